"""Plots and the static leaderboard, built from runs the real pipeline wrote (tiny fixture model):
collection into pandas, curves as PNG + SVG, the site's table and run pages, escaping of model text,
GPQA text withheld, and a real headless-Chromium render (rows, scripts, screenshot)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from rzoo import tasks
from rzoo.harness.cli import main
from rzoo.harness.runstore import atomic_write_json, read_jsonl, atomic_write_jsonl
from rzoo.leaderboard import browser, collect, plot, site

# What a hostile model could write; none of it may run in the page.
PAYLOAD = ("<script>document.documentElement.setAttribute('data-pwned','script')</script>"
           "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">")
SECRET = "GPQA-QUESTION-TEXT-MARKER"
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "out" / "test-output"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """One `train+eval` run (base and trained evaluations, a training log) and one `eval` run, made by
    the CLI on the tiny model; then one sample gets the hostile payload and a GPQA copy is added."""
    root = tmp_path_factory.mktemp("lb") / "runs"
    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RZOO_RUNS", str(root))
            assert main(["train+eval", "method=grpo", f"model={tiny_model_dir}", "train_task=varying", "steps=2",
                         "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=8", "answer_tokens=6",
                         "temperature=1.0", "lr=1e-2", "task=arith", "eval.limit=3", "eval.budgets=[4,8,16]",
                         "eval.baseline=true", "--no-progress"]) == 0
            assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=2", "eval.budgets=[4,8]",
                         "--no-progress"]) == 0
    finally:
        tasks.REGISTRY.remove("varying")
    (grpo_run,) = (root / "grpo").iterdir()
    (eval_run,) = (root / "eval").iterdir()
    samples_path = grpo_run / "eval" / "arith" / "samples.jsonl"
    samples = read_jsonl(samples_path)
    samples[0]["thinking"] = PAYLOAD
    samples[0]["answer"] = PAYLOAD
    atomic_write_jsonl(samples_path, samples)
    # the eval run's results relabelled as GPQA, with a marker standing for text that quotes a question
    gpqa = eval_run / "eval" / "gpqa_diamond"
    shutil.copytree(eval_run / "eval" / "arith", gpqa)
    results = json.loads((gpqa / "results.json").read_text())
    results["task"] = "gpqa_diamond"
    atomic_write_json(gpqa / "results.json", results)
    rows = read_jsonl(gpqa / "samples.jsonl")
    for r in rows:
        r["task"], r["thinking"], r["answer"] = "gpqa_diamond", f"{SECRET} thinking", f"{SECRET} answer"
    atomic_write_jsonl(gpqa / "samples.jsonl", rows)
    return {"root": root, "grpo": grpo_run, "eval": eval_run}


def test_collect_reads_every_curve_point(runs):
    points = collect.collect(runs["root"])
    assert list(points.columns) == collect.columns()
    # grpo run: base + trained on arith x 3 budgets; eval run: arith + gpqa x 2 budgets
    assert len(points) == 2 * 3 + 2 * 2
    by_role = points.groupby(["run", "role", "task"]).size().to_dict()
    grpo_id = f"grpo/{runs['grpo'].name}"
    assert by_role[(grpo_id, "base", "arith")] == 3 and by_role[(grpo_id, "trained", "arith")] == 3
    assert points["curve"].nunique() == 3  # base, trained, plain eval: distinct legend entries
    assert set(points["budget"]) == {4, 8, 16}
    assert (points["ci_lo"] <= points["accuracy"]).all() and (points["accuracy"] <= points["ci_hi"]).all()
    assert (points["flops_mean"] > 0).all() and points["thinking_tokens_mean"].notna().all()


def test_collect_skips_broken_results_with_a_warning(runs, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(runs["eval"], root / "eval" / runs["eval"].name)
    bad = root / "eval" / runs["eval"].name / "eval" / "arith" / "results.json"
    bad.write_text("{not json")
    points = collect.collect(root)
    assert set(points["task"]) == {"gpqa_diamond"}
    assert f"skipping {bad}" in capsys.readouterr().err


def test_plot_writes_png_and_svg_with_labels(runs, tmp_path):
    points = collect.collect(runs["root"])
    for axis in plot.AXES:
        files = plot.plot_curves(points, tmp_path, axis)
        assert sorted(p.suffix for p in files) == [".png", ".svg"]
        assert all(p.stat().st_size > 1000 for p in files)
        svg = next(p for p in files if p.suffix == ".svg").read_text()
        assert plot.AXES[axis][1] in svg  # the axis label, units included
        for curve in points["curve"].unique():
            assert curve in svg  # every curve is in the legend
        assert "arith (n = " in svg and "gpqa_diamond (n = " in svg  # one panel per task
    with pytest.raises(ValueError, match="axis must be one of"):
        plot.plot_curves(points, tmp_path, "seconds")


@pytest.mark.parametrize("kind", ["rl", "sft", "dpo"])
def test_training_plot_labels_what_each_kind_of_log_holds(kind, tmp_path, recwarn):
    """Each training log draws its own series with a legend; a DPO log (no lengths per step) draws its margin and
    preference accuracy rather than an empty panel and matplotlib's 'no artists' warning."""
    extra = {"rl": {"reward_mean": 0.5, "completion_tokens_mean": 9.0, "thinking_tokens_mean": 7.0},
             "sft": {"loss": 1.2, "completion_tokens": 640},
             "dpo": {"loss": 0.6, "reward_margin": 0.3, "preference_accuracy": 0.8}}[kind]
    log = [{"step": step, **{k: v * step for k, v in extra.items()}} for step in (1, 2, 3)]
    files = plot.plot_training(log, tmp_path / kind)
    svg = next(p for p in files if p.suffix == ".svg").read_text()
    wanted = {"rl": ["reward", "thinking", "mean tokens per rollout"],
              "sft": ["loss (SFT)", "completion tokens per step (SFT)"],
              "dpo": ["reward margin (chosen - rejected)", "preference accuracy", "DPO, per step"]}[kind]
    assert all(text in svg for text in wanted), [text for text in wanted if text not in svg]
    assert not [w for w in recwarn if "No artists with labels" in str(w.message)]


def test_plot_cli_one_run(runs, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", "--runs", str(runs["root"]), "--run", str(runs["grpo"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(
        f"{stem}.{fmt}" for _, _, stem in plot.AXES.values() for fmt in plot.FORMATS)
    svg = (out / "accuracy_vs_thinking_tokens.svg").read_text()
    assert "gpqa_diamond" not in svg  # only the chosen run
    assert main(["plot", "--runs", str(runs["root"]), "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def built(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "board"
    index = site.build(runs["root"], out)
    return {"index": index, "out": out, **runs}


def test_site_table_and_run_pages(built):
    html = built["index"].read_text()
    table = html.split('<table id="board"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-task=", table)
    assert len(rows) == 4  # grpo base + trained on arith, eval on arith + gpqa
    # each of them a budget curve of 3 settings, scored by s1's three numbers (budget forcing: Control 100%)
    controls = html.split("<h2>Test-time control</h2>", 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r"<tr data-task=", controls)) == 4 and controls.count(">100%<") == 4
    for budget in (4, 8, 16):
        assert f">acc@b={budget}<" in html
    assert 'src="assets/accuracy_vs_thinking_tokens.svg"' in html and 'src="assets/accuracy_vs_flops.svg"' in html
    for run in ("grpo", "eval"):
        page = built["out"] / "runs" / f"{run}__{built[run].name}.html"
        assert page.is_file() and f'href="runs/{page.name}"' in html
    grpo_page = (built["out"] / "runs" / f"grpo__{built['grpo'].name}.html").read_text()
    assert "Training" in grpo_page and (built["out"] / "runs" / f"grpo__{built['grpo'].name}-training.svg").is_file()
    assert "&quot;lr&quot;: 0.01" in grpo_page  # the config, escaped
    assert grpo_page.count('<tr data-budget=') == 2 * 3 * 3  # base + trained, 3 problems x 3 budgets
    # no absolute links: the site works wherever it is opened from
    assert not re.search(r'(href|src)="(/|file:)', html + grpo_page)


def test_site_escapes_model_text(built):
    page = (built["out"] / "runs" / f"grpo__{built['grpo'].name}.html").read_text()
    assert "<script>document" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.documentElement" in page


def test_site_withholds_gpqa_model_text(built):
    text = "".join(p.read_text(errors="replace") for p in built["out"].rglob("*") if p.is_file())
    assert SECRET not in text
    page = (built["out"] / "runs" / f"eval__{built['eval'].name}.html").read_text()
    assert "Model text is withheld for this task" in page
    assert "gpqa_diamond" in page  # the results themselves are shown


def test_site_rebuild_replaces_and_refuses_foreign_folders(runs, tmp_path):
    out = tmp_path / "board"
    site.build(runs["root"], out)
    (out / "stale.html").write_text("old")
    site.build(runs["root"], out)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(site.LeaderboardError, match="refusing to write"):
        site.build(runs["root"], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    with pytest.raises(site.LeaderboardError, match="no runs"):
        site.build(tmp_path / "empty", tmp_path / "x")


def test_train_eval_refreshes_the_leaderboard(runs):
    index = runs["root"] / "leaderboard" / "index.html"  # written by the fixture's CLI calls
    assert index.is_file()
    assert f"grpo/{runs['grpo'].name}" in index.read_text()


# ------------------------------------------------------------------------------------------------
# a real browser


def _require_browser():
    if browser.find_chromium() is None:
        if os.environ.get("RZOO_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (make test installs it)")


def _html_tag(dom: str) -> str:
    return re.search(r"<html[^>]*>", dom).group(0)


def test_browser_detects_a_script_that_runs(tmp_path):
    """Control: the same payload, unescaped, does run -- so the check below can fail."""
    _require_browser()
    page = tmp_path / "raw.html"
    page.write_text(f"<!doctype html><html><body><pre>{PAYLOAD}</pre></body></html>")
    assert "data-pwned" in _html_tag(browser.dump_dom(page))


def test_browser_renders_the_leaderboard(built):
    _require_browser()
    dom = browser.dump_dom(built["index"])
    assert 'data-board-ready="yes"' in _html_tag(dom)  # our own script ran
    body = dom.split('<table id="board"', 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r"<tr data-task=", body)) == 4
    run_page = built["out"] / "runs" / f"grpo__{built['grpo'].name}.html"
    run_dom = browser.dump_dom(run_page)
    tag = _html_tag(run_dom)
    assert 'data-board-ready="yes"' in tag and "data-pwned" not in tag  # the injected script did not run
    assert "&lt;script&gt;document.documentElement" in run_dom  # it is shown as text
    assert run_dom.count("9 of 9 samples") == 2  # the filter script counted each table's rows (base, trained)
    shot = browser.screenshot(built["index"], SCREENSHOT_DIR / "leaderboard-index.png")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_reported_numbers_are_marked_rows_and_points(runs, tmp_path):
    """A board with an AIME 2024 evaluation shows the authors' published AIME numbers as marked rows (their
    source instead of a run link) and, where a response length is published, as stars on the curves; the page
    renders in Chromium with them."""
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(runs["root"] / "eval", root / "eval")
    (run,) = [p for p in (root / "eval").iterdir() if (p / "eval" / "arith").is_dir()][:1]
    results = json.loads((run / "eval" / "arith" / "results.json").read_text())
    results["task"] = "aime24"
    (run / "eval" / "arith" / "results.json").write_text(json.dumps(results))
    drawn = []
    real = plot._draw_references
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot, "_draw_references", lambda ax, refs, column: drawn.append((column, refs)) or real(ax, refs, column))
        index = site.build(root, tmp_path / "board")
    html = index.read_text()
    reference = re.findall(r'<tr class="reported" data-task="aime24"', html)
    from rzoo.harness.evaluation import reported

    assert len(reference) == len([r for r in reported.load() if r.task == "aime24"]) >= 5
    assert "DeepSeek-R1-Distill-Qwen-1.5B" in html and "Kimi k1.5 report" in html and "not run here" in html
    stars = [r for column, refs in drawn if column == "thinking_tokens_mean" for r in refs]
    assert {r["thinking_tokens_mean"] for r in stars} == {3272, 6827.3, 4629.6}  # the published response lengths
    _require_browser()
    dom = browser.dump_dom(index)
    assert 'data-board-ready="yes"' in _html_tag(dom) and dom.count('class="reported" data-task="aime24"') == len(reference)
    shot = browser.screenshot(index, SCREENSHOT_DIR / "leaderboard-reported.png")
    assert shot.stat().st_size > 10_000


def test_the_frontier_sentence_says_what_it_computed():
    """The zoo's frontier sentence: the fewest tokens within 0.05 of the long model's accuracy, and the more accurate
    points at about that length (issue 47: cot_valve+P's 0.952 at 6.49 tokens was called "the best accuracy per
    token" beside kimi's 1.000 at 6.50)."""
    from rzoo.leaderboard.frontier import reading

    long = {"tokens": 10.42, "accuracy": 1.0}
    table = {"cot_valve+P": [{"tokens": 6.49, "accuracy": 0.952, "setting": "α=1"}],
             "kimi": [{"tokens": 6.50, "accuracy": 1.0}], "shortest": [{"tokens": 7.6, "accuracy": 1.0}],
             "too short": [{"tokens": 3.0, "accuracy": 0.80}]}
    text = reading(table, long)
    assert text.startswith("Fewest thinking tokens within 0.05 of the long model's accuracy: cot_valve+P at α=1, "
                           "0.952 at 6.49 tokens, 0.62x")
    assert "kimi reaches 1.000" in text and "shortest" not in text and "too short" not in text
    assert reading({"kimi": table["kimi"]}, long).endswith("(accuracy 1.000).")
    assert reading({"x": [{"tokens": 1.0, "accuracy": 0.5}]}, long) == \
        "No method kept the long model's accuracy within 0.05."
