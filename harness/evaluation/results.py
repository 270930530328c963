"""Sample rows and results: grading a chunk's completions into rows, and merging every rank's journal
into `samples.jsonl` and `results.json` (each written atomically), one results entry per setting."""
from __future__ import annotations

import time
from pathlib import Path

from ..data import OWN_GRADER, Grade, Reply, TaskData
from ..generation import knobs
from ..runstore import atomic_write_json, atomic_write_jsonl, git_sha, task_folder


def protocol_record(cfg, task: str | None = None) -> dict:
    """The protocol an evaluation ran under: its name, sources, what it set, which of its values the run
    overrode (key=value wins over the preset), its graders, and what `task` stands in for (`substitute`)."""
    from .protocol import load

    p = load(cfg.protocol)
    overridden = sorted(k for k, v in p.settings.items() if getattr(cfg, k, v) != v)
    return {"name": p.name, "title": p.title, "sources": list(p.sources), "sets": dict(p.settings),
            "overridden": overridden, "headline": p.headline, "graders": dict(p.graders), "notes": list(p.notes),
            "substitute": p.substitutes.get(task)}


def task_dir(out_root: Path, task: str) -> Path:
    return Path(out_root) / task_folder(task)


def _setting_key(setting: dict) -> tuple:
    """Identifies a setting among an evaluation's rows: every knob's value (checkpoint knobs first)."""
    order = knobs.of_kind(knobs.CHECKPOINT) + knobs.of_kind(knobs.GENERATION, knobs.ENGINE, knobs.PROMPT, knobs.SEARCH)
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
    tops: dict[tuple, int] = {}  # each generation's largest budget: the smaller ones were derived from it
    for s in all_settings:
        key = knobs.generation_key(s)
        tops[key] = max(tops.get(key, 0), s["budget"])
    parts: dict[tuple, list[dict]] = {}  # each setting's sample rows, in order
    for r in rows:
        parts.setdefault(_setting_key(r), []).append(r)
    results = []
    for s in all_settings:
        part = parts.get(_setting_key(s), [])
        derived = cfg.sweep and s["budget"] < tops[knobs.generation_key(s)] and not s["waits"]
        results.append(_result(part, s, cfg, derived))
        label = knobs.label(s)
        r = results[-1]
        other = "" if r["grader"] == OWN_GRADER else \
            f" [{r['grader']} grader; rzoo's {r['accuracy_rzoo']:.3f}, {r['rzoo_disagreements']} samples differ]"
        print(f"[eval] {td.name} {label}: accuracy {r['accuracy']:.3f}{other} ({r['n_problems']} problems x k={r['k']}), "
              f"thinking tokens mean {r['thinking_tokens_mean']:.0f}, truncated {r['truncation_rate']:.2f}, "
              f"{r['seconds']:.0f}s", flush=True)
    picks, memos = _picks(cfg), {}  # one memo per setting's rows: its votes' groups and outcomes are formed once
    results += vote_results(td.name, parts, all_settings, cfg, tops, picks, memos)
    results += optimal_results(td.name, parts, all_settings, cfg, tops, picks, memos)
    curves = control_curves(results)
    print_curves(td.name, curves)
    record = protocol_record(cfg, td.name)
    if record["substitute"]:
        print(f"[eval] {td.name} under protocol {record['name']}: {record['substitute']}", flush=True)
    atomic_write_jsonl(out / "samples.jsonl", rows)
    atomic_write_json(out / "results.json", {
        "task": td.name, "model": model_info, "seed": cfg.seed, "k": k, "limit": cfg.limit,
        "protocol": record,
        "n_problems": len(td.problems), "n_problems_total": td.total, "backend": cfg.backend,
        "data": {"kind": td.source.kind, "location": td.source.location, "sha256": td.source.sha256},
        "git_sha": git_sha(), "config": {k: v for k, v in vars(cfg).items()}, "dtype": dtype,
        "results": results, "curves": curves,
    })
    for path in journals:
        path.unlink()
    return results


def vote_results(task: str, parts: dict[tuple, list[dict]], settings: list[dict], cfg, tops: dict,
                 picks: list[tuple], memos: dict) -> list[dict]:
    """`eval.votes`: for each budget curve's largest budget (no Waits), one row per N: the majority vote over the
    first N of each problem's samples (`metrics.vote_summary`), under the `votes` knob. No generation of its own:
    the k samples that budget already has serve every N. `picks`: `_picks(cfg)`; `memos`: a memo per setting,
    shared with `optimal_results` (`metrics.vote_outcomes`)."""
    from . import metrics

    out = []
    for s in settings:
        if s.get("knob") != "budget" or s.get("waits") or s["budget"] < tops[knobs.generation_key(s)]:
            continue
        part = parts.get(_setting_key(s), [])
        memo = memos.setdefault(_setting_key(s), {})
        for name, pick, scored, words in picks:
            for n in sorted(set(getattr(cfg, name, None) or [])):
                out.append({**s, name: n, "knob": name, **metrics.vote_summary(part, n, cfg.seed, pick, scored, memo),
                            "grader": part[0].get("grader", OWN_GRADER), "derived_from_sweep": True, "seconds": 0.0,
                            "generation_seconds": 0.0, "grading_seconds": 0.0})
                r = out[-1]
                print(f"[eval] {task} {knobs.label(r)}: {words} accuracy {r['accuracy']:.3f} ({r['n_problems']} "
                      f"problems), thinking tokens {r['thinking_tokens_mean']:.0f} in all", flush=True)
    return out


def _picks(cfg) -> list[tuple]:
    """The vote knobs' (name, pick, scored, words): a majority vote, the PRM-weighted vote, best-of-N by the PRM."""
    from . import metrics

    how = getattr(cfg, "prm_aggregate", "last")
    return [("votes", metrics.majority_pick, False, "majority vote"),
            ("prm_votes", metrics.prm_pick(how, weighted=True), True, "PRM-weighted vote"),
            ("prm_best", metrics.prm_pick(how, weighted=False), True, "best-of-N by the PRM")]


def optimal_results(task: str, parts: dict[tuple, list[dict]], settings: list[dict], cfg, tops: dict,
                    picks: list[tuple], memos: dict) -> list[dict]:
    """`eval.compute_optimal_bins` > 0: at each N where two or more strategies ran (the votes over N samples, the
    searches at N), one row under the `compute_optimal` knob: each problem's strategy picked by its difficulty bin,
    learned on the other half of the problems (`compute_optimal.py`); difficulty is the base sampling's pass@1."""
    import statistics

    from . import metrics
    from .compute_optimal import compute_optimal

    bins = getattr(cfg, "compute_optimal_bins", 0)
    out = []
    for s in settings:
        if not bins or s.get("knob") != "budget" or s.get("waits") or s["budget"] < tops[knobs.generation_key(s)]:
            continue
        part = parts.get(_setting_key(s), [])
        difficulty: dict[str, list[float]] = {}
        for r in part:
            difficulty.setdefault(r["problem_id"], []).append(float(bool(r["correct"])))
        pass1 = {p: statistics.fmean(v) for p, v in difficulty.items()}
        by_n: dict[int, dict[str, dict]] = {}
        memo = memos.setdefault(_setting_key(s), {})
        for name, pick, scored, _ in picks:
            for n in sorted(set(getattr(cfg, name, None) or [])):
                by_n.setdefault(n, {})[f"{name}@{n}"] = metrics.vote_outcomes(part, n, pick, scored, memo)
        fixed = {k: v for k, v in s.items() if k not in ("knob", "budget")}
        for searched in settings:  # the searches that share this budget curve's other knobs
            found = knobs.search_of(searched)
            if found is None or any(searched.get(k) != v for k, v in fixed.items() if k != found[0].name):
                continue
            rows: dict[str, list[dict]] = {}
            for r in parts.get(_setting_key(searched), []):
                rows.setdefault(r["problem_id"], []).append(r)
            by_n.setdefault(found[1], {})[f"{found[0].name}@{found[1]}"] = {
                p: (statistics.fmean(float(bool(r["correct"])) for r in rs),
                    statistics.fmean(r["thinking_tokens"] for r in rs), statistics.fmean(r["flops"] for r in rs))
                for p, rs in rows.items()}
        for n, outcomes in sorted(by_n.items()):
            if len(outcomes) < 2:
                continue
            co = compute_optimal(outcomes, pass1, bins)
            out.append({**s, "compute_optimal": n, "knob": "compute_optimal", **co, "k": 1,
                        "grader": part[0].get("grader", OWN_GRADER), "derived_from_sweep": True, "seconds": 0.0,
                        "generation_seconds": 0.0, "grading_seconds": 0.0})
            print(f"[eval] {task} {knobs.label(out[-1])}: compute-optimal accuracy {co['accuracy']:.3f} over "
                  f"{', '.join(sorted(outcomes))} (picked: {co['picked']})", flush=True)
    return out


def grade_rows(td: TaskData, problems: list, completions, setting: dict, shape,
               grade_unclosed: bool = False, bound: int | None = None, grader: str = OWN_GRADER,
               close: str = "</think>", reflection_words=None) -> list[dict]:
    """One sample row per completion (grading time included per row). An unclosed block has no answer
    (graded wrong), unless `grade_unclosed` (a model that does not think: its whole reply is the answer).
    `bound`: the thinking tokens the setting allows (`knobs.bound_of`); each row says whether it stayed
    within. `grader`: the protocol's grader for this task (`Protocol.grader_for`), whose verdict is `correct`;
    this project's own is kept beside it (`correct_rzoo`). `reflection_words`: the words counted as reflection
    (none: the default list)."""
    from ..generation import reflection
    from ..generation import thinking as T
    from ..models import flops

    family = getattr(td.task, "family", "math")
    kind = None if family is None else "choice" if family == "choice" else "math"  # for `harness grade`
    letters = getattr(td.task, "letters", None)
    rows = []
    for c in completions:
        t = time.time()
        problem = problems[c.prompt_index]
        if c.thinking_end == T.INCOMPLETE and grade_unclosed:
            reply = Reply("", c.thinking_text + c.answer_text, True, close)
        else:
            reply = Reply(c.thinking_text, c.answer_text, c.thinking_end != T.INCOMPLETE, close)
        own = td.task.grade(problem, reply.answer) if reply.closed else Grade(False, None)
        grade = own if grader == OWN_GRADER else td.task.grade_with(grader, problem, reply)
        golds = problem.meta.get("answers") if problem.meta else None
        rows.append({
            "task": td.name, "problem_id": problem.id, "sample_index": c.sample_index, **setting,
            "correct": grade.correct, "extracted": grade.extracted, "gold": problem.answer,
            **({"golds": list(golds)} if golds else {}),
            "grader": grader, "correct_rzoo": own.correct, "extracted_rzoo": own.extracted,
            "kind": kind, **({"options": letters} if letters else {}), "grade_unclosed": grade_unclosed,
            "second_opinion": own.second_opinion, "grading_timed_out": grade.timed_out or own.timed_out,
            "thinking_end": c.thinking_end, "turn_ended": c.turn_ended, "thinking_tokens": c.thinking_tokens,
            "answer_tokens": c.answer_tokens, "waits_used": c.waits,
            "answer_truncated": c.answer_truncated,
            "reflections": reflection.model_reflections(c, reflection_words),  # the model's own, not injected Waits
            "bound": bound, "within_bound": None if bound is None else c.thinking_tokens <= bound,
            "tries": c.tries,
            "generated_tokens": len(c.completion_ids),
            "flops": flops.sample_flops(shape, c.prompt_tokens, len(c.completion_ids)),
            **(_searched(c) if c.search is not None else {}),
            "grading_seconds": time.time() - t,
            "thinking": c.thinking_text, "answer": c.answer_text,
        })
    return rows


def _searched(c) -> dict:
    """A search's row: its thinking tokens, generated tokens and FLOPs are everything the search spent (all
    candidates, the PRM's forwards); the kept chain's own length and the tree's size beside them."""
    s = c.search
    return {"thinking_tokens": s["thinking_tokens"], "generated_tokens": s["generated_tokens"], "flops": s["flops"],
            "path_thinking_tokens": s["path_thinking_tokens"], "search_nodes": s["nodes"],
            "search_finished": s["finished"], "prm_flops": s["prm_flops"], "prm_score": s["prm_score"]}


def _accuracy(rows: list[dict], key: str) -> float:
    """avg@k of a verdict field: the mean over problems of the mean over their samples."""
    by_problem: dict[str, list[float]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(float(bool(r.get(key, r["correct"]))))
    return sum(sum(v) / len(v) for v in by_problem.values()) / len(by_problem)


def _result(rows: list[dict], setting: dict, cfg, derived: bool) -> dict:
    """The results entry of one setting from its sample rows."""
    from . import metrics

    gen_seconds = sum(r["generation_seconds"] for r in rows)
    grading_seconds = sum(r["grading_seconds"] for r in rows)
    generated = sum(r["generated_tokens"] for r in rows)
    disagree = [f"{r['problem_id']}#{r['sample_index']}" for r in rows
                if r["second_opinion"] is not None and r["second_opinion"] != r["correct"]]
    k = len(rows) // len({r["problem_id"] for r in rows})  # eval.k's samples, or eval.search_samples' searches
    out = {**setting, **metrics.summarize(rows, k, cfg.seed),
           "seconds": gen_seconds + grading_seconds,
           "generation_seconds": gen_seconds, "grading_seconds": grading_seconds,
           # a budget derived from the sweep only paid for its forced answers: its seconds are that increment,
           # and a tokens/s over them would count tokens generated for the largest budget
           "derived_from_sweep": derived, "generated_tokens": generated,
           "tokens_per_second": generated / gen_seconds if gen_seconds > 0 and not derived else None,
           "grader_disagreements": len(disagree), "grader_disagreement_ids": disagree,
           # the protocol's grader (`accuracy`) beside this project's own, and the samples they disagree on
           "grader": rows[0].get("grader", OWN_GRADER), "accuracy_rzoo": _accuracy(rows, "correct_rzoo"),
           "rzoo_disagreements": sum(bool(r.get("correct_rzoo", r["correct"])) != bool(r["correct"]) for r in rows),
           "grading_timeouts": sum(r["grading_timed_out"] for r in rows),
           "bound": rows[0].get("bound"), "within_bound": _share(r.get("within_bound") for r in rows)}
    tries = [r["tries"] for r in rows if r.get("tries") is not None]
    if tries:  # rejection sampling: draws per kept sample
        out["tries_mean"], out["tries_max"] = sum(tries) / len(tries), max(tries)
    if any("iterations_mean" in r for r in rows):
        out["iterations_mean"] = sum(r.get("iterations_mean", 0.0) for r in rows) / len(rows)
    return out


def _share(flags) -> float | None:
    flags = list(flags)
    return None if not flags or any(f is None for f in flags) else sum(flags) / len(flags)


def control_curves(results: list[dict]) -> list[dict]:
    """s1's Control / Scaling / Performance (`controls.py`) of every curve among a task's settings (a curve:
    the settings of one swept knob at fixed other knobs, `knobs.curve_key`), in the order they first appear."""
    from . import controls

    curves: dict[tuple, list[dict]] = {}
    for r in results:
        curves.setdefault(knobs.curve_key(r), []).append(r)
    out = []
    for (name, _), members in curves.items():
        points = [controls.Point(r["accuracy"], r["thinking_tokens_mean"], r.get("within_bound"), r.get("bound")) for r in members]
        knob = knobs.find(name)
        out.append({"knob": name, "title": knob.caption if knob else name, "series": knobs.series(members[0]),
                    "labels": [knobs.label(r) for r in members], **controls.summary(points)})
    return out


def print_curves(task: str, curves: list[dict]) -> None:
    """One line per curve: Control / Scaling / Performance."""
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    for c in curves:
        name = c["title"] + (f" ({c['series']})" if c["series"] else "")
        print(f"[eval] {task} curve {name}: Control {num(c['control'], '.0%')}, Scaling {num(c['scaling'], '+.1f')} "
              f"points/1k thinking tokens, Performance {num(c['performance'], '.3f')} over {c['settings']} settings",
              flush=True)
