from __future__ import annotations

import json

import pytest

from rzoo.harness import runstore
from rzoo.harness.registry import FunctionRegistry, Registry, UnknownName


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out" / "results.json"
    runstore.atomic_write_json(path, {"a": 1})
    runstore.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "results.json"
    runstore.atomic_write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        runstore.atomic_write_json(path, {"bad": object()})  # fails while serialising
    assert json.loads(path.read_text()) == {"ok": True}
    rows = [{"i": 1}, {"i": 2}]
    runstore.atomic_write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(TypeError):
        runstore.atomic_write_jsonl(tmp_path / "s.jsonl", [{"i": 3}, {"x": object()}])
    assert runstore.read_jsonl(tmp_path / "s.jsonl") == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "s.jsonl"]


def test_run_layout(runs_root):
    run = runstore.Run.create("grpo", {"lr": 1}, "abcd1234")
    assert run.path.parent == runs_root / "grpo"
    assert run.path.name.endswith("-abcd1234")
    assert json.loads((run.path / "config.json").read_text()) == {"lr": 1}
    assert json.loads((run.path / "status.json").read_text())["state"] == "running"
    again = runstore.Run.create("grpo", {"lr": 1}, "abcd1234")
    assert again.path != run.path
    assert run.eval_dir("jsonl:/a/b.jsonl").name == "jsonl__a_b.jsonl"


def test_registries_reject_duplicates_and_suggest():
    reg = Registry("method")
    reg.add("grpo", "json", "x")
    with pytest.raises(ValueError, match="twice"):
        reg.add("grpo", "json", "y")
    with pytest.raises(UnknownName, match="Did you mean: grpo"):
        reg.entry("gpro")
    fns = FunctionRegistry("policy loss")
    fns.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="twice"):
        fns.register("a")(lambda: 2)
    from rzoo.harness.losses import POLICY_LOSSES

    assert "grpo" in POLICY_LOSSES.names()
