"""Learning tests: each training method, through its own `train` and one update on a scripted batch, moves a tiny
model the way its paper says, measured by a plain forward that shares no code with the loss (tests/learning.py):

- RL (grpo, kimi, deepscaler, long2short rl): the better-rewarded completion's log-probability rises and the
  worse one's falls (rewards from the method's own reward function on scripted answers and lengths);
- SFT (s1): the completion loss on its own examples falls;
- DPO (long2short dpo): the chosen margin (log pi - log pi_ref of the chosen minus the rejected's) grows from 0;
- CoT-Valve++: the step's adapter gradient equals the gradient of one forward per beta at peft's own scale
  (an external reference, not the per-row code), and differs from every row at beta = 1.

Each fails under its method's key sign or wiring flipped (advantages negated in rl.py, the SFT loss negated,
chosen and rejected swapped, every row's scale 1): see docs/mutants.md.
"""
from __future__ import annotations

import json

import pytest
import torch

import learning as L

SAME = "3 plus 4 is 7"
OTHER = "four and three make three, right"  # as many tokens as SAME, none shared: the two completions' gradients differ


def _moved(monkeypatch, method, model_dir, texts, *tokens):
    """(before, after) log p of each scripted completion, before and after one step."""
    base, trained, prompt, cs = L.rl_step(monkeypatch, method, model_dir, texts, *tokens)
    from transformers import AutoTokenizer

    p = AutoTokenizer.from_pretrained(model_dir).encode(prompt, add_special_tokens=False)
    return ([L.sequence_logp(base, p, c.completion_ids) for c in cs],
            [L.sequence_logp(trained, p, c.completion_ids) for c in cs])


def _assert_better_up_worse_down(before, after):
    (good0, bad0), (good1, bad1) = before, after
    assert good1 > good0, f"the better-rewarded completion's log p fell: {good0:.5f} -> {good1:.5f}"
    assert bad1 < bad0, f"the worse-rewarded completion's log p rose: {bad0:.5f} -> {bad1:.5f}"


@pytest.mark.parametrize("method,tokens", [
    ("grpo", ["lr=1e-3", "clip_eps=0.2"]),
    ("kimi", ["lr=1e-3"]),
    ("deepscaler", ["lr=1e-3", "stage_steps=[1]", "stage_max_tokens=[8]", "stage_samples=[2]"]),
])
def test_rl_raises_the_better_answer_and_lowers_the_worse(method, tokens, monkeypatch, tiny_model_dir, runs_root):
    """A right (reward 1) and a wrong (0) answer: one update pushes them apart, each its way."""
    before, after = _moved(monkeypatch, method, tiny_model_dir, [(SAME, L.RIGHT), (OTHER, L.WRONG)], *tokens)
    _assert_better_up_worse_down(before, after)


def test_long2short_rl_raises_the_shorter_correct_answer(monkeypatch, tiny_model_dir, runs_root):
    """Both correct: Kimi's length penalty (on from step 1) alone rewards the shorter; one update favours it."""
    texts = [(SAME, L.RIGHT), (OTHER + ", and four and three make seven, right", L.RIGHT)]
    before, after = _moved(monkeypatch, "long2short", tiny_model_dir, texts, "variant=rl", "rl_lr=1e-3")
    _assert_better_up_worse_down(before, after)


def _examples(n=4):
    from rzoo.harness.data import Example

    return [Example(f"e{i}", [{"role": "user", "content": f"What is {i} + 4?"}], f"{i} plus 4 is {i + 4}",
                    f"\\boxed{{{i + 4}}}") for i in range(n)]


def _completion_loss(model, tokenizer, examples):
    """Mean over examples of the mean -log p of their completion tokens (s1's seq_mean), by a bare forward."""
    from rzoo.harness.generation import thinking as T

    fmt = T.ThinkingFormat.detect(tokenizer)
    out = []
    for ex in examples:
        p = tokenizer.encode(T.build_prompt(tokenizer, ex.messages, fmt), add_special_tokens=False)
        c = tokenizer.encode(fmt.completion_text(ex.thinking, ex.answer), add_special_tokens=False)
        out.append(-L.sequence_logp(model, p, c + [tokenizer.eos_token_id]) / (len(c) + 1))
    return sum(out) / len(out)


def test_s1_sft_lowers_the_loss_on_its_own_data(tiny_model_dir, runs_root, tokenizer):
    examples = _examples()
    cfg = L.config("s1", tiny_model_dir, "max_steps=1", "batch_size=4", "lr=1e-3", "max_length=256",
                   "save_every=0", "warmup_ratio=0")
    checkpoint = L.method("s1").train(cfg, L.sft_context("s1", tiny_model_dir, examples))
    before = _completion_loss(L.load(tiny_model_dir), tokenizer, examples)
    after = _completion_loss(L.load(checkpoint), tokenizer, examples)
    assert after < before - 1e-3, (before, after)


def test_long2short_dpo_grows_the_chosen_margin(tiny_model_dir, runs_root, tokenizer):
    """The long model's samples, scripted: the short correct one is chosen, the wrong one rejected. After one DPO step
    (plain DPO, no NLL term) log pi/pi_ref of the chosen exceeds the rejected's, measured with the base as pi_ref."""
    from dataclasses import asdict

    from rzoo.harness.generation import thinking as T
    from rzoo.methods.long2short_data import Sample

    ctx = L.rl_context("long2short", tiny_model_dir)
    samples = [Sample("p0", 0, SAME, L.RIGHT, 8, True), Sample("p0", 1, SAME + " or 3", L.WRONG, 10, False)]
    path = ctx.run.path / "long2short" / "samples.jsonl"  # sample_long reads them back instead of sampling
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(asdict(s)) + "\n" for s in samples), encoding="utf-8")
    cfg = L.config("long2short", tiny_model_dir, "variant=dpo", "train_steps=1", "batch_size=1", "micro_batch_size=1",
                   "dpo_lr=1e-3", "dpo_nll_weight=0", "max_length=256", "save_every=0", "warmup_ratio=0")
    checkpoint = L.method("long2short").train(cfg, ctx)
    fmt = T.ThinkingFormat.detect(tokenizer)
    p = tokenizer.encode(T.build_prompt(tokenizer, ctx.data.task.messages(L.PROBLEM), fmt), add_special_tokens=False)
    ids = [tokenizer.encode(fmt.completion_text(s.thinking, s.answer), add_special_tokens=False)
           + [tokenizer.eos_token_id] for s in samples]
    base, trained = L.load(tiny_model_dir), L.load(checkpoint)
    chosen, rejected = ([L.sequence_logp(m, p, c) for m in (trained, base)] for c in ids)
    margin = (chosen[0] - chosen[1]) - (rejected[0] - rejected[1])
    assert margin > 1e-3, f"the chosen margin did not grow: {margin:.5f}"


def _adapter_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_cot_valve_plus_plus_trains_each_chain_at_its_beta(monkeypatch, tiny_model_dir, runs_root, tokenizer):
    """Three chains of one question (betas 1, 0.5, 0 by token length): the gradient of the training step equals the
    sum of one forward per chain with peft's own scale set to its beta (`set_lora_scale`, the test-time knob's
    path) and differs from all three at beta = 1 (what CoT-Valve without ++ would train)."""
    from dataclasses import replace

    from peft import LoraConfig, get_peft_model

    from rzoo.harness.generation import thinking as T
    from rzoo.harness.models.lora import set_lora_scale
    from rzoo.harness.training import trainer
    from rzoo.methods import cot_valve

    q = {"question": "What is 3 + 4?"}
    base = _examples(1)[0]
    chains = [replace(base, id=f"c{k}", thinking=SAME + " again" * (3 * k), meta=q) for k in range(3)]
    cfg = L.config("cot_valve", tiny_model_dir, "valve=plus_plus", "mixchain_alphas=[]", "max_steps=1",
                   "batch_size=3", "micro_batch_size=3", "lr=1e-3", "max_length=256", "save_every=0",
                   "warmup_ratio=0", "lora_targets=[q_proj,v_proj,down_proj]")
    seen = {}
    real = trainer.Trainer.optimizer_step

    def capture(self):  # the step's gradient, and the adapter it was taken at (LoRA B = 0, A random)
        seen["grads"] = _adapter_grads(self.model)
        seen["start"] = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        return real(self)

    monkeypatch.setattr(trainer.Trainer, "optimizer_step", capture)
    cot_valve.METHOD.train(cfg, L.sft_context("cot_valve", tiny_model_dir, chains))
    got = seen["grads"]

    # the reference: a fresh LoRA set to the trained one's starting weights, one forward per chain at its beta
    model = get_peft_model(L.load(tiny_model_dir), LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=list(cfg.lora_targets),
        task_type="CAUSAL_LM"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in seen["start"]:
                p.copy_(seen["start"][n])
    fmt = T.ThinkingFormat.detect(tokenizer)
    lengths = [len(tokenizer.encode(c.thinking, add_special_tokens=False)) for c in chains]
    betas = [1 - (m - min(lengths)) / (max(lengths) - min(lengths)) for m in lengths]
    assert betas == [1.0, 0.5, 0.0]

    rows = []
    for chain in chains:
        p = tokenizer.encode(T.build_prompt(tokenizer, chain.messages, fmt), add_special_tokens=False)
        c = tokenizer.encode(fmt.completion_text(chain.thinking, chain.answer), add_special_tokens=False)
        rows.append((p, c + [tokenizer.eos_token_id]))
    tokens = sum(len(c) for _, c in rows)  # SFT's token_mean: the batch's completion tokens

    def reference(scales):
        model.zero_grad(set_to_none=True)
        for (p, c), beta in zip(rows, scales):
            set_lora_scale(model, beta)
            ids = torch.tensor([p + c])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            picked = logprobs[torch.arange(ids.shape[1] - 1), ids[0, 1:]][len(p) - 1:]  # the completion's tokens
            (-picked.sum() / tokens).backward()
        set_lora_scale(model, 1.0)
        return _adapter_grads(model)

    per_beta, at_one = reference(betas), reference([1.0, 1.0, 1.0])
    assert got.keys() == per_beta.keys() and got
    assert any(float((at_one[n] - per_beta[n]).abs().max()) > 1e-6 for n in got)
    for n in got:
        torch.testing.assert_close(got[n], per_beta[n], rtol=1e-4, atol=1e-7, msg=n)
