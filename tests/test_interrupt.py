"""A run stopped by SIGTERM or SIGINT is marked `failed` with the signal's name, in a real process.

The job is the real `harness eval` path (command line, app layer, run store) with the model, the data
and the evaluation stubbed by a slow function, so the test needs no model and takes seconds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import sys, time
    from rzoo.harness import app, models
    from rzoo.harness.evaluation import evaluate

    models.resolve = lambda spec: models.ResolvedModel(spec, spec, "stub:" + spec)
    models.set_cpu_threads = lambda: 1
    app.load_eval_tasks = lambda cfg: []
    evaluate.load_engine = lambda *args: None

    def slow(*args):
        print("EVALUATING", flush=True)
        time.sleep(120)

    evaluate.evaluate_engines = slow
    app._finished = lambda folder, tasks: False
    from rzoo.harness.cli import main
    sys.exit(main(["eval", "model=stub", "task=arith", "--no-progress"]))
""")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_marks_the_run_failed(tmp_path, sig, code):
    env = {**os.environ, "RZOO_RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 120
        for line in proc.stdout:  # wait until the run exists and the evaluation is under way
            if "EVALUATING" in line or time.time() > deadline:
                break
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert f"interrupted by {signal.Signals(sig).name}" in err
    (run,) = (tmp_path / "runs" / "eval").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status == {"state": "failed", "error": f"interrupted by {signal.Signals(sig).name}",
                      "signal": signal.Signals(sig).name}


def test_handlers_are_restored_after_a_job():
    from rzoo.harness.app import Interrupted, signals_as_exceptions

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with signals_as_exceptions():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises long before this ends
    assert info.value.name == "SIGTERM" and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_real_training_marks_the_run_failed(tmp_path, tiny_model_dir, sig, code):
    """Real training (no stub): once a step is logged, the signal ends the run with the shell's code for it
    and status.json says `failed` with the signal's name; the last checkpoint stays resumable."""
    rows = [{"question": f"What is {i} + {i}?", "thinking": f"{i} plus {i} is {2 * i}", "answer": f"\\boxed{{{2 * i}}}"}
            for i in range(8)]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = tmp_path / "runs"
    env = {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rzoo.harness.cli", "train", "method=s1", f"model={tiny_model_dir}",
                             f"train_data=jsonl:{data}", "max_steps=500", "batch_size=2", "max_length=160",
                             "save_every=1", "dtype=float32", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        if list(runs.glob("s1/*/checkpoint/trainer_state.pt")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    (run,) = (runs / "s1").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["signal"] == signal.Signals(sig).name
    assert f"interrupted by {signal.Signals(sig).name}" in err
    assert json.loads((run / "checkpoint" / "method.json").read_text())["step"] >= 1
