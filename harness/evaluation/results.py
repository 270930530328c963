"""Sample rows and results: grading a chunk's completions into rows, and merging every rank's journal
into `samples.jsonl` and `results.json` (each written atomically), one results entry per setting."""
from __future__ import annotations

import time
from pathlib import Path

from ..data import Grade, TaskData
from ..generation import knobs
from ..runstore import atomic_write_json, atomic_write_jsonl, git_sha, task_folder


def protocol_record(cfg) -> dict:
    """The protocol an evaluation ran under: its name, sources, what it set, and which of its values the run
    overrode (key=value wins over the preset)."""
    from .protocol import load

    p = load(cfg.protocol)
    overridden = sorted(k for k, v in p.settings.items() if getattr(cfg, k, v) != v)
    return {"name": p.name, "title": p.title, "sources": list(p.sources), "sets": dict(p.settings),
            "overridden": overridden, "headline": p.headline}


def task_dir(out_root: Path, task: str) -> Path:
    return Path(out_root) / task_folder(task)


def _setting_key(setting: dict) -> tuple:
    """Identifies a setting among an evaluation's rows: every knob's value (checkpoint knobs first)."""
    order = knobs.of_kind(knobs.CHECKPOINT) + knobs.of_kind(knobs.GENERATION, knobs.ENGINE)
    return tuple(setting.get(k.name) for k in order)


def write_task(td: TaskData, out_root: Path, model_info: dict, cfg, settings: list[dict], fixed: list[dict],
               dtype) -> list[dict]:
    """Merge every rank's journal into samples.jsonl and results.json (atomically), in a fixed order."""
    from .journal import Journal

    out = task_dir(out_root, td.name)
    k = cfg.samples(td.name)
    journals = sorted(out.glob("samples.partial.rank*.jsonl"))
    rows = [row for path in journals for row in Journal(path).rows()]
    order = {p.id: i for i, p in enumerate(td.problems)}
    all_settings = [{**s, **f} for f in fixed for s in settings]
    index = {_setting_key(s): i for i, s in enumerate(all_settings)}
    rows.sort(key=lambda r: (index[_setting_key(r)], order[r["problem_id"]], r["sample_index"]))
    derived_budgets = cfg.sweep and len({s["budget"] for s in settings}) > 1
    top = max(s["budget"] for s in settings)
    results = []
    for s in all_settings:
        part = [r for r in rows if _setting_key(r) == _setting_key(s)]
        derived = derived_budgets and s["budget"] != top and not s["waits"]
        results.append(_result(part, s, cfg, derived))
        label = knobs.label(s)
        r = results[-1]
        print(f"[eval] {td.name} {label}: accuracy {r['accuracy']:.3f} ({r['n_problems']} problems x k={k}), "
              f"thinking tokens mean {r['thinking_tokens_mean']:.0f}, truncated {r['truncation_rate']:.2f}, "
              f"{r['seconds']:.0f}s", flush=True)
    atomic_write_jsonl(out / "samples.jsonl", rows)
    atomic_write_json(out / "results.json", {
        "task": td.name, "model": model_info, "seed": cfg.seed, "k": k, "limit": cfg.limit,
        "protocol": protocol_record(cfg),
        "n_problems": len(td.problems), "n_problems_total": td.total, "backend": cfg.backend,
        "data": {"kind": td.source.kind, "location": td.source.location, "sha256": td.source.sha256},
        "git_sha": git_sha(), "config": {k: v for k, v in vars(cfg).items()}, "dtype": dtype,
        "results": results,
    })
    for path in journals:
        path.unlink()
    return results


def grade_rows(td: TaskData, problems: list, completions, setting: dict, shape,
               grade_unclosed: bool = False) -> list[dict]:
    """One sample row per completion (grading time included per row). An unclosed block has no answer
    (graded wrong), unless `grade_unclosed` (a model that does not think: its whole reply is the answer)."""
    from ..generation import thinking as T
    from ..models import flops

    rows = []
    for c in completions:
        t = time.time()
        problem = problems[c.prompt_index]
        if c.thinking_end == T.INCOMPLETE and grade_unclosed:
            grade = td.task.grade(problem, c.thinking_text + c.answer_text)
        elif c.thinking_end == T.INCOMPLETE:  # nothing to grade
            grade = Grade(False, None)
        else:
            grade = td.task.grade(problem, c.answer_text)
        rows.append({
            "task": td.name, "problem_id": problem.id, "sample_index": c.sample_index, **setting,
            "correct": grade.correct, "extracted": grade.extracted, "gold": problem.answer,
            "second_opinion": grade.second_opinion, "grading_timed_out": grade.timed_out,
            "thinking_end": c.thinking_end, "turn_ended": c.turn_ended, "thinking_tokens": c.thinking_tokens,
            "answer_tokens": c.answer_tokens, "waits_used": c.waits, "answer_truncated": c.answer_truncated,
            "generated_tokens": len(c.completion_ids),
            "flops": flops.sample_flops(shape, c.prompt_tokens, len(c.completion_ids)),
            "grading_seconds": time.time() - t,
            "thinking": c.thinking_text, "answer": c.answer_text,
        })
    return rows


def _result(rows: list[dict], setting: dict, cfg, derived: bool) -> dict:
    """The results entry of one setting from its sample rows."""
    from . import metrics

    gen_seconds = sum(r["generation_seconds"] for r in rows)
    grading_seconds = sum(r["grading_seconds"] for r in rows)
    generated = sum(r["generated_tokens"] for r in rows)
    disagree = [f"{r['problem_id']}#{r['sample_index']}" for r in rows
                if r["second_opinion"] is not None and r["second_opinion"] != r["correct"]]
    out = {**setting, **metrics.summarize(rows, cfg.samples(rows[0]["task"]), cfg.seed),
           "seconds": gen_seconds + grading_seconds,
           "generation_seconds": gen_seconds, "grading_seconds": grading_seconds,
           # a budget derived from the sweep only paid for its forced answers: its seconds are that increment,
           # and a tokens/s over them would count tokens generated for the largest budget
           "derived_from_sweep": derived, "generated_tokens": generated,
           "tokens_per_second": generated / gen_seconds if gen_seconds > 0 and not derived else None,
           "grader_disagreements": len(disagree), "grader_disagreement_ids": disagree,
           "grading_timeouts": sum(r["grading_timed_out"] for r in rows)}
    if any("iterations_mean" in r for r in rows):
        out["iterations_mean"] = sum(r.get("iterations_mean", 0.0) for r in rows) / len(rows)
    return out
