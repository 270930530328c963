"""May a page show the model text of an evaluation? Decided by the data's identity, failing closed.

GPQA's authors ask that its questions are never published, and a model's thinking often restates
the question, so GPQA model text is withheld. Deciding by the task *name* was not enough: a results
file whose task was renamed (or a `jsonl:` copy of the data) published it. So the evaluation's own
record decides, and the text is shown only when it is known NOT to be from a withheld data set:

- withheld when the results carry no data provenance (`data.location` and `data.sha256`): nothing
  tells what the data was;
- withheld when the data's sha256 is a known withheld file, or its location is a withheld task's
  local file or hub id (or names "gpqa"), or the task name (in results.json or in any sample) is a
  withheld task or names "gpqa", or a sample's problem id has GPQA's Record ID form (`rec` + 14
  letters and digits);
- shown otherwise.
"""
from __future__ import annotations

import re

# sha256 of withheld data files as distributed: GPQA-Diamond's official CSV (gpqa_diamond.csv.gz)
KNOWN_SHA256 = {"e21fbeccd52e3d3422b8cac5182bc78261ceabf6950d533375284644e7e2ec3d"}
RECORD_ID = re.compile(r"rec[A-Za-z0-9]{14}")
NAME_HINT = "gpqa"


def _withheld_tasks() -> list:
    """Registered tasks that do not publish model text (their names, local files and hub ids)."""
    from . import REGISTRY

    out = []
    for name in REGISTRY.names():
        task = REGISTRY.load(name)
        if not getattr(task, "publish_model_text", True):
            out.append(task)
    return out


def _names_withheld(name) -> bool:
    return isinstance(name, str) and NAME_HINT in name.lower()


def publishes_model_text(results: dict, samples: list[dict] = ()) -> bool:
    """True only when the evaluation recorded in `results` (a results.json) and `samples` (its rows)
    is known not to be from a withheld data set (module doc)."""
    data = results.get("data") if isinstance(results, dict) else None
    if not isinstance(data, dict):
        return False
    location, sha = data.get("location"), data.get("sha256")
    if not isinstance(location, str) or not location.strip() or not isinstance(sha, str) or not sha.strip():
        return False
    if sha.strip().lower() in KNOWN_SHA256 or _names_withheld(location):
        return False
    task_names = {results.get("task")} | {s.get("task") for s in samples if isinstance(s, dict)}
    if any(_names_withheld(n) for n in task_names):
        return False
    for task in _withheld_tasks():
        if task.name in task_names:
            return False
        if task.local_file and location.replace("\\", "/").endswith(task.local_file):
            return False
        if task.hub_id and task.hub_id.lower() in location.lower():
            return False
    for s in samples:
        if isinstance(s, dict) and RECORD_ID.fullmatch(str(s.get("problem_id", ""))):
            return False
    return True
