"""Test-time knobs are declared once (`harness/generation/knobs.py`): a knob registered here, from this file
alone, gets its `eval.` key, is applied to the engine at each value, and lands in results.json,
samples.jsonl, the plot's point labels and the leaderboard's columns, with no core file edited."""
from __future__ import annotations

import json

import pytest

from rzoo.harness.generation import knobs


@pytest.fixture()
def shift_knob():
    seen = []

    def apply(engine, value, cfg):
        seen.append((value, cfg.shift_note))

    knob = knobs.Knob("shift", "sh", "a test knob: recorded, changes nothing", title="test shift", point="sh",
                      key="shifts", type=int, bounds={"ge": 0},
                      options=(knobs.Option("shift_note", str, "none", "a test option the knob reads"),),
                      supported=lambda model: True, apply=apply)
    knobs.KNOBS.register("shift")(knob)
    try:
        yield seen
    finally:
        knobs.KNOBS.remove("shift")


def test_a_knob_registered_in_a_test_reaches_every_output(shift_knob, tiny_model_dir, runs_root, monkeypatch):
    import matplotlib.axes

    from rzoo.harness.cli import main
    from rzoo.leaderboard import plot
    from rzoo.leaderboard.collect import collect

    assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=2", "eval.budgets=[3,5]",
                 "eval.shifts=[0,7]", "eval.shift_note=hello", "eval.answer_tokens=3", "--no-progress"]) == 0
    assert sorted(set(shift_knob)) == [(0, "hello"), (7, "hello")]  # applied at each value, with its option
    (run,) = (runs_root / "eval").iterdir()
    results = json.loads((run / "eval" / "arith" / "results.json").read_text())
    assert [(r["shift"], r["budget"], r["knob"]) for r in results["results"]] == \
           [(0, 3, "shift"), (0, 5, "shift"), (7, 3, "shift"), (7, 5, "shift")]
    assert results["config"]["shifts"] == [0, 7] and results["config"]["shift_note"] == "hello"
    samples = [json.loads(line) for line in (run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 4 and {s["shift"] for s in samples} == {0, 7}

    labels = []
    real = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", lambda self, text, *a, **k: labels.append(text) or
                        real(self, text, *a, **k))
    points = collect(runs_root)
    assert "shift" in points.columns and sorted(points["setting"].unique()) == \
           ["sh=0 b=3", "sh=0 b=5", "sh=7 b=3", "sh=7 b=5"]
    plot.plot_curves(points, runs_root / "plots", "tokens")
    # the knob changes nothing, so its two points coincide and share one label ("sh0-sh7")
    assert any("sh0" in text for text in labels) and any("sh7" in text for text in labels), labels

    index = (runs_root / "leaderboard" / "index.html").read_text()  # rebuilt by harness eval
    for setting in ("sh=0 b=3", "sh=7 b=5"):
        assert f"acc@{setting}</th>" in index
    assert "sh = test shift" in index


def test_a_knob_the_model_cannot_take_is_a_clear_error(shift_knob, tiny_model_dir, runs_root, capsys):
    from rzoo.harness.cli import main

    knobs.KNOBS.remove("shift")
    knobs.KNOBS.register("shift")(knobs.Knob("shift", "sh", "", key="shifts", type=int,
                                             supported=lambda model: False, apply=lambda *a: None))
    assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=2", "eval.budgets=[3]",
                 "eval.shifts=[1]", "--no-progress"]) == 2
    assert "has no test-time knob 'shift'" in capsys.readouterr().err


def test_knob_names_are_unique_and_every_method_knob_is_registered():
    from rzoo import methods

    with pytest.raises(ValueError, match="registered twice"):
        knobs.KNOBS.register("budget")(knobs.get("budget"))
    declared = [k for m in methods.all_methods() for k in m.knobs]
    assert declared and {k.name for k in declared} <= set(knobs.names())
    for knob in declared:
        assert knobs.get(knob.name) is knob  # the registered name is the knob's column
