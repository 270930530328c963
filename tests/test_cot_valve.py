"""CoT-Valve: the variants' data (plain, ++'s beta, +P's rounds), the alpha knob, and the merged export:
merged weights at alpha equal base + alpha * (B A) * scale (1e-6) and generate the adapter's tokens."""
from __future__ import annotations

import json

import pytest
import torch

from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import knobs
from rzoo.harness.generation import thinking as T
from rzoo.harness.data import Example
from rzoo.harness.engines.hf import HFEngine
from rzoo.methods import cot_valve


def _ex(q, thinking):
    return Example(f"{q}-{len(thinking)}", [{"role": "user", "content": q}], thinking, "\\boxed{1}", meta={"question": q})


def test_variants_prepare_mixchain():
    data = [_ex("a", "x" * n) for n in (4, 12, 8)] + [_ex("b", "y" * n) for n in (3, 3)]
    plain = cot_valve.plain(data)
    assert sorted(len(e.thinking) for e in plain) == [3, 4]  # each question's shortest chain
    betas = {(e.meta["question"], len(e.thinking)): e.meta["adapter_scale"] for e in cot_valve.plus_plus(data)}
    assert betas[("a", 4)] == 1.0 and betas[("a", 12)] == 0.0 and betas[("a", 8)] == pytest.approx(0.5)
    assert betas[("b", 3)] == 1.0  # equal lengths: all at 1
    rounds = {(e.meta["question"], len(e.thinking)): e.meta["round"] for e in cot_valve.plus_p(data)}
    assert rounds[("a", 12)] == 1 and rounds[("a", 8)] == 2 and rounds[("a", 4)] == 3  # shorter round by round


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                            lora_dropout=0.0))
    with torch.no_grad():  # peft starts B at 0 (no change): give the direction a size
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    (out / "method.json").write_text(json.dumps({"method": "cot_valve"}))
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_merged_weights_are_base_plus_alpha_times_the_direction(adapter_dir, tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from rzoo.methods.cot_valve import export_merged

    alpha = 0.5
    out = export_merged(adapter_dir, alpha, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(out)  # plain transformers
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    lora = load_file(adapter_dir / "adapter_model.safetensors")
    scale = 8 / 2  # lora_alpha / r
    checked = 0
    for key, weight in merged.state_dict().items():
        a_key = f"base_model.model.{key.removesuffix('.weight')}.lora_A.weight"
        if a_key not in lora:
            assert torch.equal(weight, base[key]), key
            continue
        delta = lora[a_key.replace("lora_A", "lora_B")] @ lora[a_key]
        assert torch.allclose(weight, base[key] + alpha * scale * delta, atol=1e-6), key
        checked += 1
    assert checked == 3 * 2  # three targets in each of two layers
    assert json.loads((out / "method.json").read_text())["alpha"] == alpha


def test_merged_model_generates_the_adapters_tokens_at_alpha(adapter_dir, tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM

    from rzoo.methods.cot_valve import export_merged

    prompts = [T.build_prompt(tokenizer, [{"role": "user", "content": f"{i} plus {i}?"}]) for i in range(4)]
    budget = T.Budget(10, 6)
    adapted = HFEngine(AutoModelForCausalLM.from_pretrained(adapter_dir).eval(), tokenizer)
    assert "alpha" in adapted.knobs
    for alpha in (0.0, 0.75):
        knobs.apply(adapted, "alpha", alpha)
        merged = HFEngine(AutoModelForCausalLM.from_pretrained(export_merged(adapter_dir, alpha, tmp_path / f"m{alpha}"))
                          .eval(), tokenizer)
        a = G.generate(adapted, prompts, budget)
        b = G.generate(merged, prompts, budget)
        assert [c.completion_ids for c in a] == [c.completion_ids for c in b]
    base = HFEngine(AutoModelForCausalLM.from_pretrained(
        json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]).eval(), tokenizer)
    knobs.apply(adapted, "alpha", 0.0)  # alpha 0 is the base model
    assert [c.completion_ids for c in G.generate(adapted, prompts, budget)] == \
           [c.completion_ids for c in G.generate(base, prompts, budget)]


@pytest.mark.parametrize("valve", ["plus_plus", "plus_p"])
def test_variants_train(valve, tiny_model_dir, runs_root, tmp_path):
    from rzoo.harness.cli import main

    path = tmp_path / "mix.jsonl"
    rows = [{"question": f"q{i}", "thinking": "x " * n, "answer": "\\boxed{1}"} for i in range(3) for n in (2, 5, 9)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["train", "method=cot_valve", f"model={tiny_model_dir}", f"valve={valve}", f"train_data=jsonl:{path}",
                 "max_steps=3", "batch_size=3", "lr=1e-3", "max_length=64", "mixchain_alphas=[]", "--no-progress"]) == 0
    (run,) = (runs_root / "cot_valve").iterdir()
    assert (run / "checkpoint" / "adapter_config.json").is_file()
    log = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    if valve == "plus_p":
        assert [r["round"] for r in log] == [1, 2, 3]
    # the variant names the curve on plots and the leaderboard, so runs of two variants stay apart
    from rzoo.leaderboard.collect import curve_label, find_runs
    (info,) = find_runs(runs_root)
    name = {"plus_plus": "cot_valve++", "plus_p": "cot_valve+P"}[valve]
    assert info.config["label"] == name
    assert curve_label(info, "trained", {}).startswith(name + " ")


def test_train_eval_sweeps_alpha_on_the_checkpoint_and_budgets_on_the_base(tiny_model_dir, runs_root, tmp_path):
    """The CPU preset's evaluation: an alpha sweep of the trained adapter, and its base (which has no adapter,
    i.e. alpha = 0) beside it at the same budgets."""
    from rzoo.harness.cli import main

    path = tmp_path / "mix.jsonl"
    rows = [{"question": f"q{i}", "thinking": "x " * n, "answer": "\\boxed{1}"} for i in range(2) for n in (2, 5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["train+eval", "method=cot_valve", f"model={tiny_model_dir}", f"train_data=jsonl:{path}",
                 "max_steps=1", "batch_size=2", "max_length=64", "task=arith", "eval.limit=2", "eval.budgets=[4]",
                 "eval.alphas=[0,1]", "eval.answer_tokens=4", "eval.baseline=true", "--no-progress"]) == 0
    (run,) = (runs_root / "cot_valve").iterdir()
    trained = json.loads((run / "eval" / "arith" / "results.json").read_text())["results"]
    base = json.loads((run / "eval_base" / "arith" / "results.json").read_text())["results"]
    assert [r["alpha"] for r in trained] == [0.0, 1.0]
    assert [(r["budget"], r["alpha"]) for r in base] == [(4, None)]


def test_per_row_scales_in_one_forward_equal_one_forward_per_scale(tiny_model_dir, tokenizer):
    """CoT-Valve++: rows at different betas in one forward (`row_scales`: each row's adapter output scaled by
    its beta) give the loss and gradients of one forward per beta at peft's own `set_scale` (the definition)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rzoo.harness.models.lora import row_scales, set_lora_scale
    from rzoo.harness.training import sft

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                      lora_dropout=0.0, init_lora_weights=False))  # a non-zero direction
    fmt = T.ThinkingFormat.detect(tokenizer)
    examples = [Example(str(i), [{"role": "user", "content": f"{i} + {i}?"}], "x " * (2 + 3 * i), "\\boxed{1}")
                for i in range(4)]
    rows = [sft.tokenize(tokenizer, ex, fmt, 64) for ex in examples]
    ids, attn, cmask = sft.collate(rows, tokenizer.pad_token_id)
    betas = [1.0, 0.25, 0.0, 0.6]
    lora = [p for n, p in model.named_parameters() if "lora_" in n]

    with row_scales(model, betas):
        one = sft.completion_cross_entropy(model(input_ids=ids, attention_mask=attn).logits, ids, cmask, "sum")
    one_grads = torch.autograd.grad(one, lora)
    per_beta = 0.0
    for b, beta in enumerate(betas):
        set_lora_scale(model, beta)
        per_beta = per_beta + sft.completion_cross_entropy(model(input_ids=ids[b:b + 1], attention_mask=attn[b:b + 1]).logits,
                                                           ids[b:b + 1], cmask[b:b + 1], "sum")
    set_lora_scale(model, 1.0)
    ref_grads = torch.autograd.grad(per_beta, lora)
    assert one.item() == pytest.approx(per_beta.item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(one_grads, ref_grads, strict=True))
    # and the scales are restored: a plain forward is the adapter at 1
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=attn).logits
        set_lora_scale(model, 1.0)
        again = model(input_ids=ids, attention_mask=attn).logits
    assert torch.equal(plain, again)


def test_plus_plus_betas_come_from_token_lengths(tokenizer):
    """beta_q = 1 - (m - m_min) / (m_max - m_min) with m the chain's length in the model's tokens."""
    chains = [Example(f"c{n}", [{"role": "user", "content": "q"}], text, "\\boxed{1}", meta={"question": "q"})
              for n, text in enumerate(["a b", "alpha beta gamma delta", "x"])]
    tokens = lambda ex: len(tokenizer.encode(ex.thinking, add_special_tokens=False))  # noqa: E731
    out = {ex.id: ex.meta["adapter_scale"] for ex in cot_valve.plus_plus(chains, tokens)}
    m = {ex.id: tokens(ex) for ex in chains}
    lo, hi = min(m.values()), max(m.values())
    assert out == {k: pytest.approx(1 - (v - lo) / (hi - lo)) for k, v in m.items()}
    assert out["c2"] == 1.0 and out["c1"] == 0.0  # the shortest chain at beta 1, the longest at 0


def test_mixchain_from_the_model_itself(runs_root):
    """++ with `mixchain_alphas` (the paper's MixChain): a plain direction is trained first, θ + αΔθ writes a
    chain for each training question, the correct ones join the data, and the variant starts from the direction.
    On the testbed's redundant model (it answers runsum correctly), a short run."""
    from rzoo.harness.cli import main
    from rzoo.harness.data import Problem
    from rzoo.methods.cot_valve_mixchain import gold_of
    from rzoo.tasks.runsum import TASK

    assert main(["train", "method=cot_valve", "valve=plus_plus", "model=testbed:redundant", "train_data=runsum:mixchain",
                 "limit=200", "mixchain_alphas=[0.5]", "mixchain_steps=20", "mixchain_questions=16",
                 "mixchain_budget=24", "mixchain_answer_tokens=6", "max_steps=4", "batch_size=16", "lr=2e-3",
                 "max_length=128", "dtype=float32", "--no-progress"]) == 0
    (run,) = (runs_root / "cot_valve").iterdir()
    direction = json.loads((run / "mixchain" / "direction" / "checkpoint" / "method.json").read_text())
    assert direction["step"] == 20
    chains = [json.loads(line) for line in (run / "mixchain" / "chains.jsonl").read_text().splitlines()]
    assert 0 < len(chains) <= 16
    for row in chains:
        assert row["meta"]["alpha"] == 0.5 and row["id"].endswith("-alpha0.5")
        ex = Example(**row)
        assert TASK.score(Problem(ex.id, "", gold_of(ex)), ex.answer) == 1.0  # only correct chains are kept
    log = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]


def test_the_checkpoint_is_a_model_that_reproduces_the_runs_alpha_rows(tiny_model_dir, runs_root, tmp_path):
    """`harness eval model=<checkpoint>` (an adapter: loaded with its base) with the run's own evaluation settings
    gives the run's alpha rows and samples exactly; the alpha sweep is real (the adapter's text differs between
    alpha 0 and 1)."""
    from rzoo.harness.cli import main

    path = tmp_path / "mix.jsonl"
    rows = [{"question": f"q{i}", "thinking": "x y " * n, "answer": "\\boxed{1}"} for i in range(4) for n in (1, 6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    evaluation = ["task=arith", "eval.limit=4", "eval.shuffle=false", "eval.budgets=[6]", "eval.alphas=[0,0.5,1]",
                  "eval.answer_tokens=4",
                  "--no-progress"]
    assert main(["train+eval", "method=cot_valve", f"model={tiny_model_dir}", f"train_data=jsonl:{path}",
                 "max_steps=4", "batch_size=4", "lr=5e-2", "max_length=64", "eval.baseline=false", *evaluation]) == 0
    (run,) = (runs_root / "cot_valve").iterdir()

    def read(folder):
        results = json.loads((folder / "arith" / "results.json").read_text())["results"]
        samples = [json.loads(x) for x in (folder / "arith" / "samples.jsonl").read_text().splitlines()]
        drop = ("seconds", "per_second")
        return ([{k: v for k, v in r.items() if not k.endswith(drop)} for r in results],
                [{k: v for k, v in s.items() if not k.endswith(drop)} for s in samples])

    own = read(run / "eval")
    assert [r["alpha"] for r in own[0]] == [0.0, 0.5, 1.0]
    text = {a: [s["thinking"] + s["answer"] for s in own[1] if s["alpha"] == a] for a in (0.0, 1.0)}
    assert text[0.0] != text[1.0]  # the direction changes what the model writes
    assert main(["eval", f"model={run / 'checkpoint'}", *evaluation]) == 0  # the run folder: tests/test_contract.py
    assert read(max((runs_root / "eval").iterdir()) / "eval") == own


def test_mixchain_drops_chains_the_budget_cut_and_forced():
    """MixChain's chains are chains the model wrote to their end: a right answer after a forced close (the budget
    cut the chain) or from a block never closed does not join; a closed, right one does."""
    from rzoo.harness.generation import thinking as T
    from rzoo.methods.cot_valve_mixchain import keep_chain

    assert keep_chain(T.CLOSED, 1.0)
    assert not keep_chain(T.FORCED, 1.0) and not keep_chain(T.INCOMPLETE, 1.0) and not keep_chain(T.CLOSED, 0.0)
