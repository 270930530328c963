"""`harness zoo`: every registered recipe is in it (each variant), a failing recipe is marked and the rest go on,
a zoo killed half-way finishes without redoing what was done, and its page (read in Chromium at desktop and
narrow widths) shows every recipe with a result or a marked failure, no duplicate base rows, readable names, no
console errors, and no planted script running."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_leaderboard import PAYLOAD, SCREENSHOT_DIR, _html_tag

SCRIPT = """
import json, sys
from pathlib import Path
from rzoo.harness import zoo
recipes = [zoo.Recipe(r["name"], r["command"], tuple(r["args"]), r.get("method"), r.get("changes", "training"),
                      r.get("description", ""), tuple(r.get("figures", ())))
           for r in json.loads(Path(sys.argv[2]).read_text())]
zoo.recipes = lambda: recipes
sys.exit(zoo.run_zoo(Path(sys.argv[1])))
"""


def test_every_registered_recipe_and_variant_is_in_the_zoo():
    from rzoo import methods
    from rzoo.harness.zoo import recipes

    names = [r.name for r in recipes()]
    assert {"cot_valve", "cot_valve++", "cot_valve+P", "long2short/merge", "long2short/shortest", "long2short/dpo",
            "long2short/rl", "s1_controls"} <= set(names)
    assert {r.method or r.name for r in recipes()} == set(methods.names())
    assert len(names) == len(set(names))


def _recipes(model, tmp_path) -> Path:
    common = [f"model={model}", "train_task=arith", "steps=2", "prompts_per_step=2", "samples_per_prompt=4",
              "max_thinking_tokens=8", "answer_tokens=6", "temperature=1.0", "lr=1e-2", "task=arith", "eval.limit=3",
              "eval.budgets=[4,8]", "eval.baseline=true", "save_every=1"]
    rows = [{"name": "grpo", "command": "train+eval", "args": ["method=grpo", *common], "method": "grpo",
             "description": "R1-Zero " + PAYLOAD},
            {"name": "grpo-seed1", "command": "train+eval", "args": ["method=grpo", *common, "seed=1"],
             "method": "grpo", "description": "the same base, evaluated again"},
            {"name": "broken", "command": "train+eval", "args": ["method=grpo", "model=/no/such/model"],
             "method": "grpo", "description": "fails on purpose"},
            {"name": "s1_controls", "command": "eval", "changes": "test time", "description": "controls",
             "figures": ["controls"],  # the zoo figure its declaration names (harness/method.py)
             "args": [f"model={model}", "task=arith", "eval.limit=3", "eval.budgets=[4,8]",
                      "eval.token_bounds=[2,4]", "eval.bound_forcing=[false,true]"]}]
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps(rows))
    return path


def _zoo(root: Path, recipes: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(root), str(recipes)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


@pytest.fixture(scope="module")
def zoo_root(tmp_path_factory, tiny_model_dir):
    """A zoo of four tiny recipes (one failing), killed with SIGKILL while its second recipe runs, then run
    again to the end."""
    tmp = tmp_path_factory.mktemp("zoo")
    root, recipes = tmp / "runs", _recipes(tiny_model_dir, tmp)
    proc = _zoo(root, recipes, start_new_session=True)  # its own process group: the kill takes the recipe's too
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        state = json.loads((root / "zoo.json").read_text()) if (root / "zoo.json").is_file() else {}
        if state.get("grpo", {}).get("state") == "done" and state.get("grpo-seed1", {}).get("run"):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads((root / "zoo.json").read_text())
    out = _zoo(root, recipes).communicate(timeout=600)[0]
    return {"root": root, "first": first, "second": json.loads((root / "zoo.json").read_text()), "out": out}


def test_a_killed_zoo_finishes_without_redoing_finished_recipes(zoo_root):
    first, second, out = zoo_root["first"], zoo_root["second"], zoo_root["out"]
    assert first["grpo"]["state"] == "done" and first["grpo-seed1"]["state"] == "running"
    assert "grpo: done" in out and "skipped" in out  # not run again
    assert second["grpo"] == first["grpo"]
    assert second["grpo-seed1"]["state"] == "done" and second["s1_controls"]["state"] == "done"
    assert second["broken"]["state"] == "failed" and "no/such/model" in second["broken"]["error"]
    assert "3 of 4 recipes done, 1 failed (broken)" in out
    # the recipe cut off was resumed or restarted, never left twice on the page (the broken one failed before it
    # made a run folder)
    assert len(list((zoo_root["root"] / "grpo").iterdir())) == 2


def test_the_zoo_page_reads_well_in_a_browser(zoo_root):
    from rzoo.leaderboard import browser

    if browser.find_chromium() is None:
        if os.environ.get("RZOO_REQUIRE_BROWSER"):
            pytest.fail("RZOO_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip("no Chromium")
    index = zoo_root["root"] / "leaderboard" / "index.html"
    html = index.read_text()
    zoo = html.split('<section id="zoo">', 1)[1].split("</section>", 1)[0]
    for name in ("grpo", "grpo-seed1", "s1_controls"):
        assert f'<td data-sort="{name}">{name}</td>' in zoo
    assert "failed: " in zoo and "no/such/model" in zoo  # the failure, marked
    assert "accuracy" in zoo and "→" in zoo  # an effect written from the numbers
    for fig in ("zoo-before-after.png", "zoo-test-time.png"):
        assert fig in zoo and (index.parent / "assets" / fig).is_file()
    board = html.split('<table id="board"', 1)[1].split("</table>", 1)[0]
    assert board.count('<td data-sort="(base)">') == 1  # two runs evaluated the same base identically: one row
    assert "grpo [" not in board or "20" not in board.split("grpo", 1)[1][:3]  # named by method, not run folder
    dom = browser.dump_dom(index)
    assert "data-pwned" not in _html_tag(dom)
    assert browser.console_errors(index) == []
    for width, name in ((1400, "zoo-desktop.png"), (420, "zoo-narrow.png")):
        shot = browser.screenshot(index, SCREENSHOT_DIR / name, width=width, height=1400)
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")


def test_the_zoo_publishes_its_figures_and_screenshot_for_the_readme(zoo_root, tmp_path):
    """`harness zoo --docs DIR` (make zoo: docs/img): the page's figures, byte for byte, and a screenshot of it."""
    from rzoo.harness.zoo import publish_docs
    from rzoo.leaderboard import browser

    if browser.find_chromium() is None:
        if os.environ.get("RZOO_REQUIRE_BROWSER"):
            pytest.fail("RZOO_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip("no Chromium")
    docs = tmp_path / "img"
    written = publish_docs(zoo_root["root"], docs)
    assets = zoo_root["root"] / "leaderboard" / "assets"
    figures = sorted(p.name for p in assets.glob("zoo-*.png"))
    assert figures and sorted(p.name for p in written) == sorted([*figures, "zoo.png"])
    for name in figures:
        assert (docs / name).read_bytes() == (assets / name).read_bytes()
    assert (docs / "zoo.png").stat().st_size > 10_000 and not list(docs.glob(".*"))  # no temp file left
