"""Helpers for the learning tests (tests/test_learning.py): a method's own `train` run for one step on a scripted
batch, and the model read before and after it by a plain forward that shares no code with the loss.

- `rl_step`: the RL loop's rollout replaced by fixed completions (scripted token ids and answers); the method's
  reward, advantages, loss and optimiser step run as they do in training (`METHOD.train`).
- `sft_context` / `rl_context`: a method's resolved config and a `TrainContext` on a tiny model and scripted data.
- `sequence_logp`: log p(completion | prompt) summed over the completion's tokens, from a bare forward.
"""
from __future__ import annotations

from pathlib import Path

import torch

from rzoo.harness import models
from rzoo.harness.data import Example, Problem, SFTData, Source, TaskData
from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import thinking as T
from rzoo.harness.runstore import Run
from rzoo.harness.training import rl
from rzoo.harness.training.trainer import TrainContext

RIGHT, WRONG = "\\boxed{7}", "\\boxed{3}"


class ScriptedTask:
    """A task whose scorer knows one answer: `RIGHT` scores 1, anything else 0."""
    name = "scripted"

    def messages(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": problem.question}]

    def score(self, problem: Problem, answer_text: str) -> float:
        return float(answer_text.strip() == problem.answer)

    def grade(self, problem, answer_text):  # pragma: no cover - training never grades
        raise NotImplementedError


PROBLEM = Problem("p0", "What is 3 + 4?", RIGHT, meta={"difficulty": 1.0})  # Kimi's curriculum reads it


def config(method: str, model_dir: Path, *tokens: str):
    from rzoo.harness.jobs import resolve

    return resolve("train", [f"method={method}", f"model={model_dir}", "dtype=float32", *tokens]).config


def context(method: str, model_dir: Path, data) -> TrainContext:
    run = Run.create(method, {"method": method}, "learning")
    return TrainContext(method, run, models.resolve(str(model_dir)), data, job={"method": method}, progress=False)


def rl_context(method: str, model_dir: Path) -> TrainContext:
    data = TaskData("scripted", ScriptedTask(), [PROBLEM], Source("generated", "tests/learning.py"), 1)
    return context(method, model_dir, data)


def sft_context(method: str, model_dir: Path, examples: list[Example]) -> TrainContext:
    return context(method, model_dir, SFTData("scripted", examples, Source("generated", "tests/learning.py")))


def completion(tokenizer, fmt, index: int, thinking: str, answer: str) -> G.Completion:
    """A closed completion of prompt 0 as the generator would return it (every token sampled)."""
    c = G.Completion(0, index, thinking_end=T.CLOSED, thinking_text=thinking, answer_text=answer)
    ids = tokenizer.encode(fmt.completion_text(thinking, answer), add_special_tokens=False)
    c.thinking_ids = ids[:1]
    c.completion_ids, c.sampled_mask = ids, [1] * len(ids)
    return c


def rl_step(monkeypatch, method: str, model_dir: Path, texts: list[tuple[str, str]], *tokens: str):
    """One RL step of `method` whose rollout is `texts` ((thinking, answer) per completion, one prompt); returns
    (base model, trained model, tokenizer, prompt text, completions)."""
    seen = {}

    def scripted_rollout(self, step, cfg):
        prompt = T.build_prompt(self.tokenizer, self.task.messages(PROBLEM), self.fmt)
        cs = [completion(self.tokenizer, self.fmt, i, t, a) for i, (t, a) in enumerate(texts)]
        assert cfg.samples_per_prompt == len(cs), "the scripted group must be the configured group size"
        seen.update(prompt=prompt, completions=cs)
        return rl.Rollout([0], [PROBLEM], [prompt], cs, 0.0)

    monkeypatch.setattr(rl.RLTrainer, "rollout", scripted_rollout)
    cfg = config(method, model_dir, "steps=1", "prompts_per_step=1", f"samples_per_prompt={len(texts)}",
                 "minibatches=1", "save_every=0", *tokens)
    from rzoo.harness.jobs import method_declaration

    checkpoint = method_declaration(method).train(cfg, rl_context(method, model_dir))
    return load(model_dir), load(checkpoint), seen["prompt"], seen["completions"]


def load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


@torch.no_grad()
def sequence_logp(model, prompt_ids: list[int], completion_ids: list[int]) -> float:
    """sum_t log p(completion_t | prompt, completion_<t) from one forward over prompt + completion."""
    ids = torch.tensor([prompt_ids + completion_ids])
    logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)  # (L-1, V)
    targets = ids[0, 1:]
    picked = logprobs[torch.arange(len(targets)), targets]
    return float(picked[len(prompt_ids) - 1:].sum())


def method(name: str):
    """A method's declaration (its `train` is what the command line runs)."""
    from rzoo.harness.jobs import method_declaration

    return method_declaration(name)
