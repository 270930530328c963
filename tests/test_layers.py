"""The layering the README draws: the core (`harness/` except the command line and the app layer)
imports nothing from methods, tasks or the leaderboard; methods and tasks never import the app, the
command line or the leaderboard. Checked on the source (function-local imports included)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = {"harness/cli.py", "harness/app.py"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                package = {"harness": "rzoo.harness", "methods": "rzoo.methods", "tasks": "rzoo.tasks",
                           "leaderboard": "rzoo.leaderboard"}[path.parent.name]
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                out.add(f"{base}.{node.module}" if node.module else base)
            else:
                out.add(node.module or "")
    return out


def _violations(folder: str, forbidden: tuple[str, ...], skip: set[str] = frozenset()) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).glob("*.py")):
        rel = f"{folder}/{path.name}"
        if rel in skip:
            continue
        for name in _imports(path):
            if name.startswith(forbidden):
                bad.append(f"{rel} imports {name}")
    return bad


def test_core_imports_no_methods_tasks_or_leaderboard():
    assert _violations("harness", ("rzoo.methods", "rzoo.tasks", "rzoo.leaderboard"), TOP) == []


def test_methods_and_tasks_stay_below_the_app():
    upper = ("rzoo.harness.cli", "rzoo.harness.app", "rzoo.leaderboard")
    assert _violations("methods", upper + ("rzoo.tasks",)) == []
    assert _violations("tasks", upper + ("rzoo.methods",)) == []
    assert _violations("leaderboard", ("rzoo.methods", "rzoo.harness.cli", "rzoo.harness.app")) == []


def test_the_check_sees_function_local_imports(tmp_path):
    src = tmp_path / "harness"
    src.mkdir()
    (src / "x.py").write_text("def f():\n    from rzoo.tasks.base import Task\n    from ..tasks import get\n")
    assert _imports(src / "x.py") == {"rzoo.tasks.base", "rzoo.tasks"}
