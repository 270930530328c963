"""SFT data: reasoning traces as (prompt messages, thinking, answer) examples, from a task that writes
its own traces, a user JSONL file, or a hub dataset of long traces (s1K-1.1).

    harness train method=s1 train_data=runsum:early_stop
    harness train method=s1 train_data=jsonl:/data/traces.jsonl      # question / thinking / answer
    harness train method=s1 preset=paper model=Qwen/Qwen2.5-32B-Instruct   # s1K-1.1 from the hub

s1K-1.1 (`simplescaling/s1K-1.1`) holds `question`, `deepseek_thinking_trajectory` (R1's thinking) and
`deepseek_attempt` (its answer); it needs a reachable hub, and its absence offline is a clear error.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rzoo.harness.data import Example, SFTData, Source

from .base import TaskError, hub_reachable, math_messages, read_records, require, sha256_file

S1K_HUB_ID = "simplescaling/s1K-1.1"
S1K_FIELDS = ("question", "deepseek_thinking_trajectory", "deepseek_attempt")


def _from_jsonl(path: Path) -> SFTData:
    rows = read_records(path)
    examples = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TaskError(f"{path}: row {i} is not a JSON object")
        question = str(require(row, "question", path, i))
        examples.append(Example(str(row.get("id", i)), math_messages(question),
                                str(require(row, "thinking", path, i)), str(require(row, "answer", path, i))))
    if not examples:
        raise TaskError(f"{path}: no examples in the file")
    return SFTData(f"jsonl:{path}", examples, Source("local", str(path.resolve()), sha256_file(path)))


def _from_hub(hub_id: str) -> SFTData:
    if not hub_reachable(hub_id):
        raise TaskError(f"SFT data {hub_id!r} needs the hub, which is unreachable; give a local "
                        "jsonl:<path> with question/thinking/answer, or a task's traces (e.g. runsum:minimal)")
    from datasets import load_dataset

    rows = list(load_dataset(hub_id, split="train"))
    missing = [f for f in S1K_FIELDS if rows and f not in rows[0]]
    if missing:
        raise TaskError(f"hub dataset {hub_id!r} lacks fields {missing} (expected the s1K-1.1 schema)")
    examples = [Example(str(i), math_messages(r["question"]), r["deepseek_thinking_trajectory"], r["deepseek_attempt"])
                for i, r in enumerate(rows)]
    blob = json.dumps([[e.id, e.thinking[:64]] for e in examples]).encode()
    return SFTData(hub_id, examples, Source("hub", hub_id, hashlib.sha256(blob).hexdigest()))


def load_examples(spec: str, data_dir=None) -> SFTData:
    from . import REGISTRY, get

    if spec.startswith("jsonl:"):
        return _from_jsonl(Path(spec[len("jsonl:"):]).expanduser())
    name, sep, variant = spec.partition(":")
    if sep and name in REGISTRY:
        task = get(name)
        if not hasattr(task, "examples"):
            raise TaskError(f"task {name!r} writes no reasoning traces; SFT data is <task>:<variant> for a task "
                            "that does (runsum), jsonl:<path>, or a hub id")
        return task.examples(variant, split="train")
    if spec.count("/") == 1:
        return _from_hub(spec)
    raise TaskError(f"SFT data {spec!r}: expected <task>:<variant> (e.g. runsum:minimal), jsonl:<path>, or a hub "
                    "id such as simplescaling/s1K-1.1")
