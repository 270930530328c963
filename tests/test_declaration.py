"""A method is one file and one registration: `toy_method.py` (a test file, outside the package) is registered
through `RZOO_METHODS` and runs through train+eval, the leaderboard (its knob's column) and the zoo (a recipe of
its own, run in a subprocess that finds it the same way), with no edit to the package."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.fixture()
def toy(monkeypatch, tiny_model_dir, tmp_path):
    from rzoo import methods

    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": f"What is {i} + 1?", "thinking": f"{i} and one",
                                        "answer": f"\\boxed{{{i + 1}}}"}) + "\n" for i in range(6)))
    monkeypatch.setenv("RZOO_TOY_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("RZOO_TOY_DATA", str(data))
    monkeypatch.setenv("RZOO_METHODS", "toy_method:METHOD")
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}:{__import__('os').environ.get('PYTHONPATH', '')}")
    import importlib

    import toy_method

    importlib.reload(toy_method)  # its preset reads the environment set above
    yield "toy"
    if "toy" in methods.REGISTRY:
        methods.unregister("toy")
    methods._plugged.discard("toy_method:METHOD")


def test_a_method_from_one_file_trains_evaluates_and_shows_its_knob(toy, runs_root):
    from rzoo import methods
    from rzoo.harness.cli import main
    from rzoo.harness.generation import knobs

    assert "toy" in methods.names() and knobs.get("toy_scale").key == "toy_scales"
    assert main(["train+eval", "method=toy", "--no-progress"]) == 0
    (run,) = (runs_root / "toy").iterdir()
    results = json.loads((run / "eval" / "arith" / "results.json").read_text())["results"]
    assert sorted(r["toy_scale"] for r in results) == [0.5, 2.0]
    base = json.loads((run / "eval_base" / "arith" / "results.json").read_text())["results"]
    assert base and all(r["toy_scale"] in (0.5, 2.0) for r in base)  # on_base: the base model takes it too
    page = (runs_root / "leaderboard" / "index.html").read_text()
    assert "toy scale" in page or "ts=0.5" in page
    card = (run / "checkpoint" / "README.md").read_text()
    assert "toy_scale" in card and "a test's own recipe" in card


def test_the_zoo_runs_a_method_declared_outside_the_package(toy, tmp_path):
    from rzoo.harness import zoo

    names = [r.name for r in zoo.recipes()]
    assert "toy" in names
    root = tmp_path / "zoo"
    assert zoo.run_zoo(root, ["toy"]) == 0  # the recipe runs in a subprocess, which finds the method by RZOO_METHODS
    state = json.loads((root / "zoo.json").read_text())
    assert state["toy"]["state"] == "done" and state["toy"]["method"] == "toy"
    assert "toy" in (root / "leaderboard" / "index.html").read_text()
