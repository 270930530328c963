"""A method is one file and one registration: `toy_method.py` (a test file, outside the package) is registered
through `RZOO_METHODS` and runs through the zoo (a recipe of its own, run in a subprocess that finds it the same
way: `harness train+eval method=toy` at its CPU preset), the leaderboard (its knob's settings) and its checkpoint's
model card, with no edit to the package."""
from __future__ import annotations

import json
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_a_method_from_one_file_runs_through_the_zoo_the_leaderboard_and_its_card(monkeypatch, tiny_model_dir,
                                                                                 tmp_path):
    import os

    from rzoo import methods
    from rzoo.harness import zoo
    from rzoo.harness.generation import knobs

    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": f"What is {i} + 1?", "thinking": f"{i} and one",
                                        "answer": f"\\boxed{{{i + 1}}}"}) + "\n" for i in range(6)))
    monkeypatch.setenv("RZOO_TOY_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("RZOO_TOY_DATA", str(data))
    monkeypatch.setenv("RZOO_METHODS", "toy_method:METHOD")
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    try:
        assert "toy" in methods.names() and knobs.get("toy_scale").key == "toy_scales"
        assert "toy" in [r.name for r in zoo.recipes()]
        root = tmp_path / "zoo"
        assert zoo.run_zoo(root, ["toy"]) == 0  # in a subprocess, which finds the method by RZOO_METHODS
    finally:
        if "toy" in methods.REGISTRY:
            methods.unregister("toy")
        methods._plugged.discard("toy_method:METHOD")
    state = json.loads((root / "zoo.json").read_text())
    assert state["toy"]["state"] == "done" and state["toy"]["method"] == "toy"
    (run,) = (root / "toy").iterdir()
    results = json.loads((run / "eval" / "arith" / "results.json").read_text())["results"]
    assert sorted(r["toy_scale"] for r in results) == [0.5, 2.0]
    base = json.loads((run / "eval_base" / "arith" / "results.json").read_text())["results"]
    assert sorted(r["toy_scale"] for r in base) == [0.5, 2.0]  # on_base: the base model takes it too
    page = (root / "leaderboard" / "index.html").read_text()
    assert "ts=0.5" in page and "ts=2" in page  # the knob's settings, labelled by its declaration
    card = (run / "checkpoint" / "README.md").read_text()
    assert "toy_scale" in card and "a test's own recipe" in card and "Results of its run" in card
