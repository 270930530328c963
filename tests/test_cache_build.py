"""Cache writes under concurrency (`harness/models/cache_build.py`): two real processes on a fresh cache build a
model once and load the same one; a builder killed mid-build leaves nothing a later run mistakes for a model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rzoo.harness.models.cache_build import build_once

# a build that takes long enough for the other process to arrive while it runs
SLOW_BUILD = """
import json, sys, time
from pathlib import Path
from rzoo.harness.models.cache_build import build_once

out = Path(sys.argv[1])
def make(work):
    print("building", flush=True)
    (work / "part").write_text("half")
    time.sleep(float(sys.argv[2]))
    (work / "done.json").write_text(json.dumps({"pid": __import__("os").getpid()}))
build_once(out, lambda f: (f / "done.json").exists(), make)
print("loaded", json.loads((out / "done.json").read_text())["pid"], flush=True)
"""

# both processes import first, then start building at the same moment (the test creates the file `go`)
REAL_BUILD = """
import sys, time
from pathlib import Path
from rzoo.tasks.testbed_model import build_recurrent
import rzoo.harness.models.cache_build, transformers, torch
print("ready", flush=True)
while not Path(sys.argv[1]).exists():
    time.sleep(0.01)
print("path", build_recurrent(progress=False).path, flush=True)
"""


def _start(code: str, *args, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "RZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_processes_wait_for_one_builder(tmp_path):
    out = tmp_path / "models" / "thing"
    procs = [_start(SLOW_BUILD, out, 3, cache=tmp_path) for _ in range(2)]
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    assert sum(log.count("building") for log in logs) == 1, logs
    loaded = {line.split()[1] for log in logs for line in log.splitlines() if line.startswith("loaded")}
    assert len(loaded) == 1  # both loaded the one build
    assert sorted(p.name for p in out.parent.iterdir()) == ["thing", "thing.lock"]  # no work folder left


def test_the_real_model_is_built_once_by_two_processes(tmp_path):
    go = tmp_path / "go"
    procs = [_start(REAL_BUILD, go, cache=tmp_path) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    assert sum(log.count("building") for log in logs) == 1, logs
    paths = {line.split()[1] for log in logs for line in log.splitlines() if line.startswith("path")}
    assert len(paths) == 1
    folder = Path(paths.pop())
    from transformers import AutoModelForCausalLM

    from rzoo.harness.models.recurrent import register

    register()
    assert AutoModelForCausalLM.from_pretrained(folder).config.model_type == "rzoo_recurrent"
    assert [p.name for p in folder.parent.iterdir() if ".build" in p.name] == []


def test_a_killed_builder_leaves_no_model(tmp_path):
    out = tmp_path / "models" / "thing"
    proc = _start(SLOW_BUILD, out, 60, cache=tmp_path)
    while "building" not in proc.stdout.readline():  # the build has started (its work folder exists)
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # only the work folder: a name no loader reads
    assert [p.name for p in out.parent.iterdir() if p.name.startswith("thing.build-")]
    # the lock died with its process: the next build proceeds, clears the leftover and publishes
    calls = []
    built = build_once(out, lambda f: (f / "done.json").exists(),
                       lambda w: (calls.append(1), (w / "done.json").write_text(json.dumps({}))))
    assert built and calls == [1] and (out / "done.json").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["thing", "thing.lock"]
    assert not build_once(out, lambda f: (f / "done.json").exists(), lambda w: calls.append(2))
    assert calls == [1]  # complete: not built again
