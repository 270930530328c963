"""Process reward models (PRMs) as scorers: the probability that a chain is still right after each of its steps.

    scorer = load_scorer("runs/prm/.../checkpoint", policy_tokenizer)      # this project's (method=prm)
    scorer = load_scorer("Qwen/Qwen2.5-Math-PRM-7B", policy_tokenizer)     # a published one, in its convention
    scores = scorer.score([Chain(question, prompt_ids, steps)])            # [[p_step1, p_step2, ...]]

A `Chain` is what the policy wrote, as its own token ids cut into steps (`steps.py`). Three conventions read it:

- `head` (`methods/prm.py`): the policy's architecture with a two-class token head
  (`AutoModelForTokenClassification`), reading the policy's own tokens, prompt included; a step's score is
  P(good) at its last token. No separator is inserted: the PRM reads exactly what the policy generated.
- `math_shepherd` (Wang et al. 2024, Math-Shepherd): a causal LM reading `question + " " + steps`, each step
  followed by the step tag " ки"; a step's score is softmax over the logits of "+" and "-" at its tag, "+"'s share.
- `qwen_prm` (Qwen2.5-Math-PRM, Zhang et al. 2025): the chat template over a system prompt, the question and the
  steps joined and ended by "<extra_0>"; the model's (B, T, 2) logits, class 1's probability at each separator.
  The published model needs `trust_remote_code` (its own head class); a `*ForTokenClassification` checkpoint with
  two labels and the same tokens reads the same way (how the tests check the convention with a tiny model).

`random` is the control: a score drawn from a hash of the chain (no model, no FLOPs), so a search guided by it
shows what the PRM adds. A step's score list is aggregated into one value by `AGGREGATES` (last: the default, as
search-and-learn uses for Qwen2.5-Math-PRM; min; prod). Each scorer counts its FLOPs (`flops.sample_flops` over
every token it reads: a PRM re-reads the whole chain each time it scores it, no cache).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol

from ..registry import Registry


@dataclass(frozen=True)
class Chain:
    question: str  # the problem's text (the published PRMs read it)
    prompt_ids: tuple[int, ...]  # the policy's prompt, as generated from (this project's PRM reads it)
    steps: tuple[tuple[int, ...], ...]  # the policy's tokens, step by step


def chain(question: str, prompt_ids, steps) -> Chain:
    return Chain(question, tuple(prompt_ids), tuple(tuple(s) for s in steps))


AGGREGATES = Registry("PRM score aggregation")
AGGREGATES.register("last", "the last step's score")(lambda scores: scores[-1] if scores else 0.0)
AGGREGATES.register("min", "the lowest step score")(lambda scores: min(scores) if scores else 0.0)
AGGREGATES.register("prod", "the product of the step scores")(lambda scores: math.prod(scores) if scores else 0.0)


def aggregate(scores: list[float], how: str = "last") -> float:
    """One value for a chain from its step scores (`AGGREGATES`); a chain with no step scores 0."""
    return float(AGGREGATES.get(how)(list(scores)))


class Scorer(Protocol):
    def score(self, chains: list[Chain]) -> list[list[float]]: ...  # one score per step, per chain

    def flops(self, chains: list[Chain]) -> list[float]: ...  # what scoring each chain once costs


class RandomScorer:
    """Uniform scores from a hash of (seed, the chain's tokens up to each step): the same chain scores the same."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def score(self, chains: list[Chain]) -> list[list[float]]:
        from .engine import mix_seed

        out = []
        for c in chains:
            seen: list[int] = []
            row = []
            for step in c.steps:
                seen.extend(step)
                row.append(mix_seed(self.seed, c.prompt_ids, seen) / 2 ** 63)
            out.append(row)
        return out

    def flops(self, chains: list[Chain]) -> list[float]:
        return [0.0] * len(chains)


class _ModelScorer:
    """Shared by the model-backed conventions: batching, the device, FLOPs over each input's length."""
    batch_size = 64

    def __init__(self, model, tokenizer, policy_tokenizer):
        from ..models import flops

        self.model, self.tokenizer, self.policy = model.eval(), tokenizer, policy_tokenizer
        self.shape = flops.shape_of(model)

    def inputs(self, c: Chain) -> tuple[list[int], list[int]]:  # (input ids, the positions read, one per step)
        raise NotImplementedError

    def read(self, logits, positions: list[int]) -> list[float]:  # (T, C) logits of one row -> step scores
        raise NotImplementedError

    def score(self, chains: list[Chain]) -> list[list[float]]:
        import torch

        out: list[list[float]] = []
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(chains), self.batch_size):
            batch = [self.inputs(c) for c in chains[start:start + self.batch_size]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (x, _) in enumerate(batch):  # right-padded: a causal model's positions are unchanged
                ids[r, :len(x)] = torch.tensor(x)
                mask[r, :len(x)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
            out += [self.read(logits[r], pos) for r, (_, pos) in enumerate(batch)]
        return out

    def flops(self, chains: list[Chain]) -> list[float]:
        from ..models import flops

        return [flops.sample_flops(self.shape, len(self.inputs(c)[0]), 0) for c in chains]


class HeadScorer(_ModelScorer):
    """This project's PRM (`methods/prm.py`): the policy's prompt and tokens, P(good) at each step's last token."""

    def inputs(self, c: Chain) -> tuple[list[int], list[int]]:
        ids, positions = list(c.prompt_ids), []
        for step in c.steps:
            ids += step
            positions.append(len(ids) - 1)
        return ids, positions

    def read(self, logits, positions: list[int]) -> list[float]:
        return logits[positions].softmax(-1)[:, 1].tolist()


class ShepherdScorer(_ModelScorer):
    """Math-Shepherd's convention: " ки" after each step; "+"'s share of ("+", "-") at each tag."""
    tag, good, bad = "ки", "+", "-"

    def __init__(self, model, tokenizer, policy_tokenizer):
        super().__init__(model, tokenizer, policy_tokenizer)
        self.tag_id = tokenizer.encode(self.tag, add_special_tokens=False)[-1]
        self.candidates = [tokenizer.encode(t, add_special_tokens=False)[-1] for t in (self.good, self.bad)]

    def inputs(self, c: Chain) -> tuple[list[int], list[int]]:
        text = c.question + " " + "".join(f"{self.policy.decode(list(s)).strip()} {self.tag}\n" for s in c.steps)
        ids = self.tokenizer.encode(text)
        return ids, [i for i, t in enumerate(ids) if t == self.tag_id]

    def read(self, logits, positions: list[int]) -> list[float]:
        return logits[positions][:, self.candidates].softmax(-1)[:, 0].tolist()


class QwenScorer(_ModelScorer):
    """Qwen2.5-Math-PRM's convention: the chat template, steps joined and ended by "<extra_0>", class 1's
    probability at each separator."""
    separator = "<extra_0>"
    system = "Please reason step by step, and put your final answer within \\boxed{}."

    def __init__(self, model, tokenizer, policy_tokenizer):
        super().__init__(model, tokenizer, policy_tokenizer)
        self.sep_id = tokenizer.encode(self.separator, add_special_tokens=False)[-1]

    def inputs(self, c: Chain) -> tuple[list[int], list[int]]:
        steps = [self.policy.decode(list(s)).strip() for s in c.steps]
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": c.question},
                    {"role": "assistant", "content": self.separator.join(steps) + self.separator}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ids, [i for i, t in enumerate(ids) if t == self.sep_id]

    def read(self, logits, positions: list[int]) -> list[float]:
        return logits[positions].softmax(-1)[:, 1].tolist()


FORMATS = {"head": HeadScorer, "math_shepherd": ShepherdScorer, "qwen_prm": QwenScorer}


def detect(folder_or_id: str, tokenizer, config) -> str:
    """Which convention a checkpoint follows: this project's (its method.json says so), Qwen2.5-Math-PRM's (its
    separator token), Math-Shepherd's (its step tag); else a clear error."""
    import json
    from pathlib import Path

    meta = Path(folder_or_id) / "method.json"
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("card", {}).get("checkpoint") == "scorer":
        return "head"
    vocab = tokenizer.get_vocab()
    if QwenScorer.separator in vocab:
        return "qwen_prm"
    if any(ShepherdScorer.tag in t for t in vocab):
        return "math_shepherd"
    raise ValueError(f"PRM {folder_or_id!r}: not a checkpoint of method=prm, and its tokenizer has neither "
                     f"Qwen2.5-Math-PRM's {QwenScorer.separator!r} nor Math-Shepherd's step tag "
                     f"{ShepherdScorer.tag!r}; set eval.prm_format to one of {', '.join(FORMATS)}")


def resolve(spec: str) -> str:
    """A run folder stands for its checkpoint; anything else is a folder or a hub id as given."""
    from pathlib import Path

    path = Path(spec)
    return str(path / "checkpoint") if (path / "checkpoint" / "method.json").is_file() else spec


@functools.lru_cache(maxsize=4)
def _load(spec: str, fmt: str, dtype: str):
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    from ..models import precision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = precision.resolve(dtype, device)
    remote = {"trust_remote_code": True}
    tokenizer = AutoTokenizer.from_pretrained(spec, **remote)
    config = AutoConfig.from_pretrained(spec, **remote)
    fmt = detect(spec, tokenizer, config) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"eval.prm_format {fmt!r} is not one of auto, {', '.join(FORMATS)}")
    archs = getattr(config, "architectures", None) or []
    if fmt == "math_shepherd":
        cls = AutoModelForCausalLM
    elif any("ForTokenClassification" in a for a in archs) or fmt == "head":
        cls = AutoModelForTokenClassification
    else:  # Qwen2.5-Math-PRM's own head class
        cls = AutoModel
    model = cls.from_pretrained(spec, dtype=getattr(torch, dtype), **remote).to(device)
    return fmt, model, tokenizer


def load_scorer(spec: str, policy_tokenizer, fmt: str = "auto", dtype: str = "auto", seed: int = 0) -> Scorer:
    """The scorer `spec` names: "random", a method=prm run or checkpoint, or a published PRM (folder or hub id)."""
    if spec == "random":
        return RandomScorer(seed)
    if spec == "trained":
        raise ValueError("eval.prm=trained names the PRM a `train+eval method=prm` run trains; outside one, give the "
                         "PRM's run folder, checkpoint or hub id")
    fmt, model, tokenizer = _load(resolve(spec), fmt, dtype)
    if fmt == "head" and tokenizer.get_vocab() != policy_tokenizer.get_vocab():
        raise ValueError(f"PRM {spec!r} reads its policy's own tokens, and this model's tokenizer is not the one it was "
                         "trained on (see its method.json's base_model)")
    return FORMATS[fmt](model, tokenizer, policy_tokenizer)
