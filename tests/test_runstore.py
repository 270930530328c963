from __future__ import annotations

import json

import pytest

from rzoo.harness import runstore
from rzoo.harness.registry import Registry, UnknownName


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
    fns = Registry("policy loss")
    fns.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="twice"):
        fns.register("a")(lambda: 2)
    from rzoo.harness.training.losses import POLICY_LOSSES

    assert "grpo" in POLICY_LOSSES.names()


def test_unwritable_runs_root_is_a_one_line_error(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from rzoo.harness.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RZOO_RUNS", str(blocker / "runs"))  # a runs root under a file: cannot be created
    rc = main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=1", "eval.budgets=[2]", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("harness: error: cannot write") and len(err.splitlines()) == 1


def test_full_disk_mid_run_keeps_previous_files_and_fails_cleanly(tmp_path, monkeypatch, capsys):
    import errno
    import os

    path = tmp_path / "results.json"
    runstore.atomic_write_json(path, {"ok": True})
    real = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        runstore.atomic_write_json(path, {"ok": False})
    monkeypatch.setattr(os, "replace", real)
    assert json.loads(path.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


@pytest.fixture()
def small_disk(tmp_path):
    """A real file system of 256 KiB (tmpfs, mounted where the tests run as root, as on this project's machines
    and CI); None where it cannot be mounted."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                 capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    yield mount if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_disk_that_fills_during_a_run_is_a_one_line_error(small_disk, tmp_path, tiny_model_dir, capsys,
                                                            monkeypatch):
    """The disk fills while `harness eval` writes its samples: one line on stderr naming the cause, exit 2,
    the files written before intact, no temp file left. On a real small file system where one can be mounted;
    elsewhere the disk fills at the fourth flush (`os.fsync` raising ENOSPC, as a full disk does at write)."""
    import errno
    import os
    import shutil

    from rzoo.harness.cli import main

    if small_disk is not None:
        root = small_disk
        (root / "filler").write_bytes(b"\0" * (shutil.disk_usage(root).free - 12 * 1024))
    else:
        root = tmp_path / "fallback"
        calls, real = [], os.fsync

        def fsync(fd):
            calls.append(fd)
            if len(calls) > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setenv("RZOO_RUNS", str(root / "runs"))
    rc = main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=24", "eval.budgets=[8,16]",
               "eval.chunk=4", "--no-progress"])
    err = capsys.readouterr().err.strip()
    ours = [line for line in err.splitlines() if line.startswith("harness")]  # beside transformers' progress bars
    assert rc == 2 and len(ours) == 1 and "Traceback" not in err, err
    assert ours[0].startswith("harness: error: cannot write") and "No space left on device" in ours[0]
    (run,) = (root / "runs" / "eval").iterdir()
    assert json.loads((run / "config.json").read_text())["command"] == "eval"  # written before: intact
    assert not list(run.rglob("*.tmp")) and not (run / "eval" / "arith" / "results.json").exists()
