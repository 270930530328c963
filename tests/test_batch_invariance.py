"""Greedy results do not depend on how the work is split: `harness eval` at eval.batch_size 1, 8 and 128 writes the
same samples, with the budget sweep and with separate runs per budget, for every kind of model the methods produce:
a plain Llama (budget forcing, and a "Wait"), a LoRA adapter at several alphas (cot_valve), and a recurrent-depth
model with an attention window at several r, with and without early exit (latent). One case also runs in two
processes (torchrun) against one.

Exact equality is asserted, not a tolerance: on CPU in float32 a row's arithmetic does not depend on the other
rows of its batch in these models (padding is masked, positions come from the mask, the recurrent model's window
counts tokens, its iteration count covers real tokens only), so every token, every count and every FLOP figure is
the same; no tolerance was needed. The evaluation runs above give every row of a round the same limit; the rounds
test below gives each row its own limit and suffix, so rows are continued with holes and suffix padding between their
tokens, the layout where the latent model's window once counted columns (issue 44: its answers changed with
eval.batch_size; the recurrent cases below fail with that window put back, as does
`test_the_window_counts_tokens_not_columns` in tests/test_recurrent.py). The early-exit evaluation failed on FLOPs
before the iteration count left padding out (padding exits at its own iteration)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzoo.harness.cli import main

SKIP = ("seconds",)  # timings: the only fields allowed to differ


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny random Llama with weights wide enough that its greedy text depends on the prompt."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         initializer_range=0.3)
    out = tmp_path_factory.mktemp("llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, llama_dir, tokenizer) -> Path:
    """A peft LoRA adapter (rank 2, alpha 8, as cot_valve's) over the tiny Llama, its B nonzero so alpha matters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(llama_dir),
                           LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("lora")
    model.save_pretrained(out)  # the adapter; loaded with it applied, as a cot_valve checkpoint is
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def windowed_recurrent_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny recurrent-depth model with an attention window of 3 tokens (the latent preset's kind of model)."""
    import torch

    from rzoo.harness.models.recurrent import RecurrentConfig, RecurrentForCausalLM

    torch.manual_seed(0)
    config = RecurrentConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_attention_heads=2,
                             n_prelude=1, n_core=1, n_coda=1, mean_recurrence=3, max_recurrence=8, backprop_depth=2,
                             attention_window=3, max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = RecurrentForCausalLM(config)
    with torch.no_grad():  # a wider head: greedy text that depends on the input, not one token repeated
        model.embed_tokens.weight.mul_(20)
    out = tmp_path_factory.mktemp("windowed_recurrent")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _samples(runs: Path) -> list[dict]:
    (run,) = (runs / "eval").iterdir()
    rows = [json.loads(x) for x in (run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if not k.endswith(SKIP)} for r in rows),
                  key=lambda r: json.dumps(r, sort_keys=True))


def _eval(model: Path, args: list[str], batch: int, sweep: bool, root: Path, monkeypatch) -> list[dict]:
    runs = root / f"b{batch}-{'sweep' if sweep else 'separate'}"
    monkeypatch.setenv("RZOO_RUNS", str(runs))
    assert main(["eval", f"model={model}", "task=arith", "eval.limit=12", "eval.dtype=float32",
                 f"eval.batch_size={batch}", f"eval.sweep={str(sweep).lower()}", *args, "--no-progress"]) == 0
    return _samples(runs)


KINDS = {
    "plain": ("llama_dir", ["eval.budgets=[3,8]", "eval.answer_tokens=5"]),
    "plain, Wait": ("llama_dir", ["eval.budgets=[4,8]", "eval.waits=[1]", "eval.answer_tokens=4"]),
    "lora, alpha": ("lora_dir", ["eval.budgets=[3,6]", "eval.alphas=[0,0.5,1.25]", "eval.answer_tokens=4"]),
    "recurrent, r": ("windowed_recurrent_dir", ["eval.budgets=[2,5]", "eval.recurrence=[1,2,4]",
                                                "eval.answer_tokens=5"]),
    "recurrent, early exit": ("windowed_recurrent_dir", ["eval.budgets=[2,5]", "eval.recurrence=[2,3]",
                                                         "eval.exit_kl=0.5", "eval.answer_tokens=5"]),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_greedy_results_do_not_depend_on_the_batch_size(kind, request, tmp_path, monkeypatch):
    fixture, args = KINDS[kind]
    model = request.getfixturevalue(fixture)
    for sweep in (True, False):
        one = _eval(model, args, 1, sweep, tmp_path, monkeypatch)
        assert len({(r["thinking"], r["answer"]) for r in one}) > 2  # the text depends on the problem
        for batch in (8, 128):
            other = _eval(model, args, batch, sweep, tmp_path, monkeypatch)
            changed = [(a.get("problem_id"), a["thinking"], a["answer"], b["thinking"], b["answer"])
                       for a, b in zip(one, other) if a != b]
            assert not changed, (kind, sweep, batch, changed[:3])


def test_two_processes_give_what_one_process_gives(windowed_recurrent_dir, tmp_path):
    from test_distributed import _harness

    args = ["eval", f"model={windowed_recurrent_dir}", "task=arith", "eval.limit=12", "eval.dtype=float32",
            "eval.budgets=[2,5]", "eval.recurrence=[1,4]", "eval.answer_tokens=5", "eval.chunk=5"]
    _harness([*args, "eval.batch_size=128"], tmp_path / "two", 2, 29541)
    _harness([*args, "eval.batch_size=1"], tmp_path / "one", 1, 0)
    assert _samples(tmp_path / "two") == _samples(tmp_path / "one")


ROUNDS = {  # model, engine setting (a method's knob), what it covers
    "plain": ("llama_dir", {}),
    "lora, alpha 1.25": ("lora_dir", {"alpha": 1.25}),
    "recurrent, r 4": ("windowed_recurrent_dir", {"num_steps": 4}),
    "recurrent, r 4, early exit": ("windowed_recurrent_dir", {"num_steps": 4, "exit_kl": 0.5}),
}


def _rounds(engine, prefixes, limits, suffixes, batch: int):
    """A round with a limit per row (rows stop at different lengths), then each row continued from all of its
    tokens with a suffix of its own length: in a batch, that layout puts holes and suffix padding between a
    row's tokens (`HFChunk.continue_rows`). Returns {row: (round tokens, continued tokens)}."""
    from rzoo.harness.generation.engine import Sampling

    sampling = Sampling(batch_size=batch)
    out = {}
    for chunk in engine.rounds(prefixes, limits, None, sampling):
        rows = list(range(len(chunk.indices)))
        cont = chunk.continue_rows(rows, [len(o.ids) for o in chunk.outputs], [suffixes[i] for i in chunk.indices],
                                   4, sampling)
        for r, i in enumerate(chunk.indices):
            out[i] = (chunk.outputs[r].ids, cont[r].ids)
    return out


@pytest.mark.parametrize("kind", list(ROUNDS))
def test_continued_rounds_do_not_depend_on_the_batch_size(kind, request, tokenizer):
    from rzoo.harness import engines, models
    from rzoo.harness.models.lora import set_lora_scale

    fixture, knob = ROUNDS[kind]
    path = request.getfixturevalue(fixture)
    engine = engines.load(models.resolve(str(path)), dtype="float32")
    if "alpha" in knob:
        set_lora_scale(engine.model, knob["alpha"])
    engine.generate_kwargs.update({k: v for k, v in knob.items() if k != "alpha"})
    prefixes = [tokenizer(f"Question {i}: " + "add " * (i % 5) + "the numbers")["input_ids"] for i in range(12)]
    limits = [2 + (3 * i) % 7 for i in range(12)]
    suffixes = [tokenizer(" so" + " then" * (i % 3))["input_ids"] for i in range(12)]
    one = _rounds(engine, prefixes, limits, suffixes, 1)
    assert len({tuple(c) for _, c in one.values()}) > 2  # the text depends on the row
    for batch in (8, 128):
        assert _rounds(engine, prefixes, limits, suffixes, batch) == one, (kind, batch)
