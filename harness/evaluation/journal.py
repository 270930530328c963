"""An append-only JSONL journal: rows are appended and flushed (fsync) chunk by chunk, so a process
killed at any point (even SIGKILL) leaves every finished chunk on disk; a torn last line (the kill came
mid-write) is detected on reading and dropped."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..runstore import _json_default


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        """The complete rows written so far (a last line without its newline, or unparsable, is dropped)."""
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]  # everything up to the last newline
        rows = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line torn and then appended to: stop trusting the rest
        if len(complete) != len(data) or len(rows) != complete.count(b"\n"):
            self._truncate(rows)
        return rows

    def _truncate(self, rows: list[dict]) -> None:
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
