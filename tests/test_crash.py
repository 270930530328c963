"""kill -9 anywhere loses nothing: a real SIGKILL at random points of a training run and of an evaluation;
the resumed run ends with the same train.jsonl and weights / the same results.json and samples (greedy) as
an uninterrupted one, having lost at most `save_every` steps / one chunk of problems. Kills are timed by
what the run has saved (polled), not by the clock, so every attempt kills a run that has something to
resume and something left to do, whatever the machine's speed; each test counts its resumes."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SKIP = ("seconds", "generation_seconds", "grading_seconds", "tokens_per_second")


def _cmd(args):
    return [sys.executable, "-m", "rzoo.harness.cli", *args, "--no-progress"]


def _env(runs: Path):
    return {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _run(args, runs: Path) -> None:
    out = subprocess.run(_cmd(args), env=_env(runs), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def _kill_when(args, runs: Path, ready, timeout: float = 240.0) -> int:
    """Start a run, poll its runs root until `ready(runs)` is true (a saved state to resume from), then SIGKILL
    it; returns the return code (-9 when the kill landed, 0 when the run had already finished)."""
    proc = subprocess.Popen(_cmd(args), env=_env(runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            try:
                if ready(runs):
                    break
            except (OSError, ValueError):  # a file read mid-write: look again
                pass
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return proc.returncode


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in SKIP} for r in rows]


def _jsonl(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("crash") / "sft.jsonl"
    rows = [{"question": f"What is {i} + {i}?", "thinking": f"{i} plus {i} is {2 * i}", "answer": f"\\boxed{{{2 * i}}}"}
            for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _saved_step(runs: Path) -> int:
    """The step of the run's last committed checkpoint (0 before the first save)."""
    meta = [p / "checkpoint" / "method.json" for p in (runs / "s1").glob("*")] if (runs / "s1").exists() else []
    return max((json.loads(m.read_text())["step"] for m in meta if m.is_file()), default=0)


def test_training_survives_sigkill_at_random_points(tiny_model_dir, sft_file, tmp_path):
    """Each kill lands as soon as the run has saved its state at a step drawn at random (so it always lands after a
    save and before the end, on any machine); every attempt must resume."""
    from safetensors.torch import load_file

    args = ["train", "method=s1", f"model={tiny_model_dir}", f"train_data=jsonl:{sft_file}", "max_steps=12",
            "batch_size=4", "lr=1e-3", "max_length=256", "dtype=float32", "save_every=2"]
    _run(args, tmp_path / "full")
    (full,) = (tmp_path / "full" / "s1").iterdir()
    rng = random.Random(0)
    resumed = 0
    for attempt, target in enumerate(rng.sample([2, 4, 6], 2)):
        runs = tmp_path / f"killed{attempt}"
        code = _kill_when(args, runs, lambda r, t=target: _saved_step(r) >= t)
        assert code == -signal.SIGKILL, f"the run ended ({code}) before the kill at step {target}"
        (part,) = (runs / "s1").iterdir()
        saved = json.loads((part / "checkpoint" / "method.json").read_text())["step"]
        logged = len(_jsonl(part / "train.jsonl"))
        assert target <= saved < 12 and saved >= logged - 2  # lost at most save_every steps
        out = subprocess.run(_cmd(["train", f"resume={part}"]), env=_env(runs), capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"[run] resuming {part}" in out.stdout
        resumed += 1
        got, want = _strip(_jsonl(part / "train.jsonl")), _strip(_jsonl(full / "train.jsonl"))
        assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, 13))
        for x, y in zip(got, want, strict=True):
            assert x.keys() == y.keys() and all(x[k] == pytest.approx(y[k], rel=1e-6) for k in x)
        a, b = load_file(full / "checkpoint" / "model.safetensors"), load_file(part / "checkpoint" / "model.safetensors")
        assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max().item() < 1e-6 for k in a)
    assert resumed == 2


def _journal_rows(runs: Path) -> int:
    return sum(len(_jsonl(j)) for j in (runs / "eval").glob("*/eval/arith/samples.partial.*"))


def test_evaluation_survives_sigkill_at_random_points(tiny_model_dir, tmp_path):
    """Each kill waits until a random number of chunks is in the journal, so every attempt has something to
    resume from and something left to do; the resumed evaluation must equal an uninterrupted one."""
    args = ["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=24", "eval.budgets=[3,8]",
            "eval.answer_tokens=4", "eval.dtype=float32", "eval.chunk=2"]
    _run(args, tmp_path / "full")
    (full,) = (tmp_path / "full" / "eval").iterdir()
    rng = random.Random(1)
    resumed = 0
    for attempt, chunks in enumerate(rng.sample([1, 2, 3, 4], 2)):  # of 12 chunks of 2 problems
        runs = tmp_path / f"killed{attempt}"
        code = _kill_when(args, runs, lambda r, c=chunks: _journal_rows(r) >= c * 2 * 2)
        assert code == -signal.SIGKILL, f"the evaluation ended ({code}) before the kill after {chunks} chunks"
        (part,) = (runs / "eval").iterdir()
        rows = _jsonl(next((part / "eval" / "arith").glob("samples.partial.*")))
        assert len(rows) % (2 * 2) == 0 and chunks * 4 <= len(rows) < 24 * 2  # whole chunks, not all
        out = subprocess.run(_cmd(["eval", f"resume={part}"]), env=_env(runs), capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"[run] resuming {part}" in out.stdout
        resumed += 1
        assert not list((part / "eval" / "arith").glob("samples.partial.*"))
        ra = json.loads((full / "eval" / "arith" / "results.json").read_text())["results"]
        rb = json.loads((part / "eval" / "arith" / "results.json").read_text())["results"]
        assert _strip(ra) == _strip(rb)
        assert _strip(_jsonl(full / "eval" / "arith" / "samples.jsonl")) == \
               _strip(_jsonl(part / "eval" / "arith" / "samples.jsonl"))
    assert resumed == 2


def test_a_search_evaluation_survives_sigkill(tiny_model_dir, tmp_path):
    """A PRM-guided search (random scorer) goes through the same resumable chunks: killed once some of its chunks are
    in the journal, the resumed evaluation equals an uninterrupted one (its candidates are seeded per search)."""
    args = ["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=12", "eval.budgets=[3]",
            "eval.answer_tokens=3", "eval.dtype=float32", "eval.chunk=2", "eval.temperature=1.0", "eval.prm=random",
            "eval.beam=[2]", "eval.search_candidates=2"]
    _run(args, tmp_path / "full")
    (full,) = (tmp_path / "full" / "eval").iterdir()
    runs = tmp_path / "killed"
    code = _kill_when(args, runs, lambda r: _journal_rows(r) >= 12 + 4)  # the budget rows, then 2 search chunks
    assert code == -signal.SIGKILL, f"the evaluation ended ({code}) before the kill"
    (part,) = (runs / "eval").iterdir()
    rows = _jsonl(next((part / "eval" / "arith").glob("samples.partial.*")))
    assert 16 <= len(rows) < 24 and any(r["knob"] == "beam" for r in rows)
    out = subprocess.run(_cmd(["eval", f"resume={part}"]), env=_env(runs), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ra = json.loads((full / "eval" / "arith" / "results.json").read_text())["results"]
    rb = json.loads((part / "eval" / "arith" / "results.json").read_text())["results"]
    assert _strip(ra) == _strip(rb) and [r["knob"] for r in ra] == ["budget", "beam"]
    assert _strip(_jsonl(full / "eval" / "arith" / "samples.jsonl")) == \
           _strip(_jsonl(part / "eval" / "arith" / "samples.jsonl"))


def test_torn_journal_line_is_dropped(tmp_path):
    from rzoo.harness.evaluation.journal import Journal

    j = Journal(tmp_path / "j.jsonl")
    j.append([{"a": 1}, {"a": 2}])
    with open(j.path, "a") as fh:
        fh.write('{"a": 3, "b"')  # the kill came mid-write
    assert j.rows() == [{"a": 1}, {"a": 2}]
    j.append([{"a": 4}])
    assert j.rows() == [{"a": 1}, {"a": 2}, {"a": 4}]


def test_save_over_a_stale_old_checkpoint(tokenizer, tmp_path):
    """A kill after a checkpoint swap but before its clean-up leaves `checkpoint.old` beside a complete
    `checkpoint` (the random-kill test above hit it); the next save replaces both without failing."""
    from conftest import build_tiny_model
    from rzoo.harness.training.trainer import save_checkpoint

    model, out = build_tiny_model(tokenizer), tmp_path / "checkpoint"
    save_checkpoint(model, tokenizer, out, {"step": 1})
    stale = tmp_path / "checkpoint.old"
    stale.mkdir()
    (stale / "leftover.bin").write_bytes(b"x")
    save_checkpoint(model, tokenizer, out, {"step": 2})
    assert json.loads((out / "method.json").read_text())["step"] == 2
    assert not stale.exists() and not (tmp_path / "checkpoint.tmp").exists()
