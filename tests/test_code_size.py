"""The size limits the project keeps to (the developers' guide): no function in the core or a method over 80
lines, no module over 400, so that a file reads as one idea."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def oversized(folders=("harness", "methods"), max_function: int = 80, max_module: int = 400) -> list[str]:
    out = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            rel = path.relative_to(ROOT).as_posix()
            if len(text.splitlines()) > max_module:
                out.append(f"{rel}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > max_function:
                        out.append(f"{rel}:{node.lineno} {node.name}: {lines} lines")
    return out


def test_no_function_over_80_lines_and_no_module_over_400():
    assert oversized() == []


def test_the_check_counts_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    (tmp_path / "harness").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    (tmp_path / "harness" / "long.py").write_text(f"def f():\n{body}\n")  # 81 lines
    assert oversized(("harness",)) == ["harness/long.py:1 f: 81 lines"]
