"""Evaluation: generate at each test-time setting, grade with the task's scorer, write samples and
results.

    harness eval model=default task=arith,math500 eval.budgets=[64,256] eval.k=1

A *setting* is one value of every test-time knob (`generation/knobs.py`): the thinking budget and s1's
Wait extensions at the largest budget, swept by one generation (`forcing.sweep`), and each engine knob a
method declares (set on the engine, the budget sweep run at each value).

Writes, per task, `eval/<task>/samples.jsonl` (one line per problem x sample x setting; ids and the
model's text only, never the question) and `eval/<task>/results.json` (one entry per setting), through
`results.py`. Every line carries each knob (null where it does not apply) and `knob`, the one its curve
sweeps.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..data import TaskData
from ..generation import knobs
from .config import EvalConfig
from .results import grade_rows, task_dir, write_task


@dataclass(frozen=True)
class CheckpointCurve:
    """A method's extra evaluation of its run (its `checkpoint_curves` hook): several checkpoints on one curve,
    each under its own value of a checkpoint knob, at the largest budget (or, with `sweep`, at every setting of
    the evaluation); written to `<run>/<folder>/`."""
    folder: str  # e.g. "eval_<name>"
    knob: str  # a registered knob of kind CHECKPOINT
    checkpoints: list[tuple[object, Path]]  # (the knob's value, a checkpoint folder)
    spec: str  # the model info results.json records: what was evaluated, and where it lives
    source: str
    sweep: bool = False  # every setting of the evaluation (a curve per checkpoint), not only the largest budget


def load_engine(resolved, cfg: EvalConfig):
    """The generation engine (`generation.engine.Engine`) for a resolved model and `cfg.backend`."""
    from .. import engines

    return engines.load(resolved, cfg.backend, cfg.dtype, cfg.seed, cfg.vllm_tensor_parallel, cfg.vllm_ngram)


def row_seeds(cfg: EvalConfig, problems: list, k: int) -> list[int] | None:
    """One seed per (problem, sample), from the eval seed and the problem's id: a sampled answer does not
    depend on the batch, chunk or process that drew it (reruns, resumes and shards agree). None when greedy."""
    from ..generation.engine import mix_seed

    if cfg.temperature <= 0:
        return None
    return [mix_seed(cfg.seed, p.id, j) for p in problems for j in range(k)]


def _generate(engine, prompts: list[str], cfg: EvalConfig, settings: list[dict], fmt, progress: bool, k: int,
              seeds: list[int] | None, cap: int | None = None):
    """{(budget, waits): completions} and {(budget, waits): seconds} for one value of the engine knobs. `cap`: a
    ceiling on every budget (s1's auto thinking budget, `eval.max_gen_toks`); a setting keeps its name."""
    from ..generation import forcing as G
    from ..generation.thinking import Budget

    real = (lambda b: min(b, cap)) if cap else (lambda b: b)  # noqa: E731 - the thinking tokens actually allowed
    sampling = G.Sampling(temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.batch_size)
    common = dict(n=k, sampling=sampling, seed=cfg.seed, progress=progress, fmt=fmt, row_seeds=seeds)
    named = sorted({s["budget"] for s in settings if not s["waits"]})
    budgets = sorted({real(b) for b in named})
    top_name = max(s["budget"] for s in settings)
    top = real(top_name)
    out, seconds = {}, {}
    if budgets:
        timings: dict[int, float] = {}
        made: dict[int, list] = {}
        budget = Budget(top, cfg.answer_tokens, min(top, cfg.min_thinking_tokens), 0, cfg.force_close,
                        cfg.answer_unclosed)
        if cfg.sweep:  # one generation at the largest budget, short answers below
            made = G.sweep(engine, prompts, budget, budgets, timings=timings, **common)
        else:
            for b in budgets:
                t = time.time()
                made[b] = G.generate(engine, prompts, Budget(b, cfg.answer_tokens, min(b, cfg.min_thinking_tokens),
                                                             0, cfg.force_close, cfg.answer_unclosed), **common)
                timings[b] = time.time() - t
        for b in named:
            out[(b, None)], seconds[(b, None)] = made[real(b)], timings[real(b)]
    for w in sorted({s["waits"] for s in settings if s["waits"]}):
        t = time.time()
        out[(top_name, w)] = G.generate(engine, prompts, Budget(top, cfg.answer_tokens, min(top, cfg.min_thinking_tokens),
                                                                w, cfg.force_close, cfg.answer_unclosed), **common)
        seconds[(top_name, w)] = time.time() - t
    return out, seconds


def s1_cap(engine, td: TaskData, protocol, control, cfg: EvalConfig, fmt) -> int | None:
    """s1's auto thinking budget for `td` (`eval.max_gen_toks`; None when off), from the task's longest prompt."""
    from ..generation import thinking as T

    if not cfg.max_gen_toks:
        return None
    tok = engine.tokenizer
    lengths = [len(tok.encode(T.build_prompt(tok, _messages(protocol, td.task, p, control, cfg), fmt),
                              add_special_tokens=False)) for p in td.problems]
    return T.s1_auto_thinking(lengths, len(tok.encode(fmt.forced_close, add_special_tokens=False)), cfg.max_gen_toks)


def _group_key(setting: dict) -> tuple:
    """The knobs one generation holds fixed while the budget sweep runs (engine, checkpoint, prompt knobs)."""
    return knobs.generation_key(setting)


def _chunk_key(row: dict) -> tuple:
    return _group_key(row), row["problem_id"]


def evaluate_engines(engines: list[tuple[dict, object]], model_info: dict, cfg: EvalConfig, tasks: list[TaskData],
                     out_root: Path, progress: bool = True, settings: list[dict] | None = None) -> dict[str, list[dict]]:
    """Evaluate several engines into one results file per task: `engines` is [(fixed knobs, make_engine)],
    e.g. a method's checkpoints each under its own value of a checkpoint knob, each evaluated at
    `settings` (default: the config's) with the fixed knobs added to every row.

    Resumable and shardable: problems go in chunks of `eval.chunk`; each chunk's sample rows are appended to
    `<task>/samples.partial.rank<r>.jsonl` and flushed, so a killed evaluation continues where it stopped
    (a torn last line is dropped) and loses at most one chunk. Under `torchrun` / `accelerate launch`
    each process takes every N-th problem and the main process merges. The final `samples.jsonl` and
    `results.json` are written at the end, atomically, from all rows, in a fixed order."""
    from .. import distributed
    from .journal import Journal

    settings = settings or cfg.settings()
    rank, world = distributed.rank_and_world()
    dtype = None
    for fixed, make in engines:
        engine = None
        for td in tasks:
            journal = Journal(task_dir(out_root, td.name) / f"samples.partial.rank{rank}.jsonl")
            done = {_chunk_key(row) for row in journal.rows()}
            mine = list(range(rank, len(td.problems), world))
            group_settings = [{**s, **fixed} for s in settings]
            for _, group in itertools.groupby(group_settings, key=_group_key):
                group = list(group)
                for start in range(0, len(mine), cfg.chunk):
                    chunk = mine[start:start + cfg.chunk]
                    if all((_group_key(group[0]), td.problems[i].id) in done for i in chunk):
                        continue  # already in the journal (a resumed evaluation)
                    if engine is None:
                        engine = make()
                        _check_knobs(engine, settings)
                    journal.append(_evaluate_chunk(engine, td, cfg, group, chunk, progress))
                    dtype = engine.dtype
        del engine
    distributed.barrier()
    summary = {}
    if rank == 0:
        for td in tasks:
            summary[td.name] = write_task(td, out_root, model_info, cfg, settings, [f for f, _ in engines], dtype)
    distributed.barrier()
    return summary


def _check_knobs(engine, settings: list[dict]) -> None:
    for knob in knobs.of_kind(knobs.ENGINE):
        if any(s.get(knob.name) is not None for s in settings) and knob.name not in engine.knobs:
            raise ConfigError(f"eval: this model has no test-time knob {knob.name!r} (it has: "
                              f"{', '.join(sorted(engine.knobs)) or 'only budget and waits'})")


def _countdown(engine, prompts, completions, td: TaskData, cfg: EvalConfig, fmt, progress: bool):
    """Step-conditional forcing: each completion cut where its step countdown reaches 0 (`countdown.py`)."""
    from ..generation import forcing as G
    from ..generation.countdown import cut_at_countdown

    zero = getattr(td.task, "countdown_zero", None)
    if zero is None:
        raise ConfigError(f"eval.bound_forcing with step bounds: task {td.name!r} does not say where its step "
                          "countdown reaches 0 (Task.countdown_zero)")
    sampling = G.Sampling(temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.batch_size)
    return cut_at_countdown(engine, prompts, completions, zero, cfg.answer_tokens, fmt, sampling, progress)


def _messages(protocol, task, problem, control, cfg) -> list[dict]:
    """The protocol's messages for `problem`, with a prompt control's instruction placed by the task."""
    messages = protocol.messages(task, problem)
    if control is None or control[0].instruction is None:
        return messages
    knob, value = control
    return task.instruct(messages, knob.name, value, knob.instruction(value, cfg))


def _evaluate_chunk(engine, td: TaskData, cfg: EvalConfig, group: list[dict], chunk: list[int],
                    progress: bool) -> list[dict]:
    """Sample rows of problems `chunk` at every setting of one value of the engine knobs (`group`)."""
    from ..generation import thinking as T
    from .protocol import load

    protocol = load(cfg.protocol)
    fmt = protocol.thinking_format(T.ThinkingFormat.detect(engine.tokenizer))
    for knob in knobs.of_kind(knobs.ENGINE):
        if group[0].get(knob.name) is not None:
            knobs.apply(engine, knob.name, group[0][knob.name], cfg)
    problems = [td.problems[i] for i in chunk]
    control = knobs.prompt_control(group[0])
    prompts = [T.build_prompt(engine.tokenizer, _messages(protocol, td.task, p, control, cfg), fmt) for p in problems]
    search = knobs.search_of(group[0])
    k = cfg.search_samples if search is not None else cfg.samples(td.name)
    engine.reset_stats()
    extra_cap = {}
    if search is not None:  # a step-level search guided by a PRM (`generation/search.py`)
        t = time.time()
        key = (group[0]["budget"], group[0]["waits"])
        by_setting = {key: search[0].generate(engine, prompts, search[1], cfg, problems, k, fmt, progress, td.task)}
        seconds = {key: time.time() - t}
    elif control is not None and control[0].generate is not None:  # a control with a generation of its own
        t = time.time()
        key = (group[0]["budget"], group[0]["waits"])
        by_setting = {key: control[0].generate(engine, prompts, control[1], cfg, problems, k, fmt, progress)}
        seconds = {key: time.time() - t}
    else:
        cap = s1_cap(engine, td, protocol, control, cfg, fmt)
        by_setting, seconds = _generate(engine, prompts, cfg, group, fmt, progress, k, row_seeds(cfg, problems, k), cap)
        extra_cap = {"thinking_cap": cap} if cap else {}  # the thinking tokens s1's auto budget allowed
    shape = engine.flops_shape  # e.g. a recurrent model's: at the iterations it actually ran (early exit included)
    extra = engine.stats()
    rows = []
    for s in group:
        completions = by_setting[(s["budget"], s["waits"])]
        if s.get("bound_forcing") and control is not None and control[0].countdown:
            completions = _countdown(engine, prompts, completions, td, cfg, fmt, progress)
        part = grade_rows(td, problems, completions, s, shape, cfg.grade_unclosed, knobs.bound_of(s, cfg),
                          protocol.grader_for(td.task), fmt.close, cfg.reflection_words)
        if _scored(cfg, s, group):  # the PRM's step scores, for the PRM-weighted vote and best-of-N
            _score_rows(engine, td, problems, prompts, completions, part, cfg)
        for row in part:  # this chunk's generation time, shared by its rows (summed again in results)
            row["generation_seconds"] = seconds[(s["budget"], s["waits"])] / len(part)
            row["protocol"] = cfg.protocol
            row.update(extra)
            row.update(extra_cap)
        rows.extend(part)
    return rows


def _scored(cfg: EvalConfig, setting: dict, group: list[dict]) -> bool:
    """Does this setting's samples need PRM scores: the largest budget of a budget curve, with eval.prm_votes or
    eval.prm_best set."""
    if not (getattr(cfg, "prm_votes", None) or getattr(cfg, "prm_best", None)):
        return False
    return (setting.get("knob") == "budget" and not setting.get("waits")
            and setting["budget"] == max(s["budget"] for s in group if s.get("knob") == "budget"))


def _score_rows(engine, td: TaskData, problems: list, prompts: list[str], completions, rows: list[dict], cfg) -> None:
    """Each sample's PRM step scores (`prm_scores`) and the FLOPs of scoring it once (`prm_flops`), in place."""
    from ..generation import prm, steps

    scorer = prm.load_scorer(cfg.prm, engine.tokenizer, cfg.prm_format, cfg.dtype, cfg.seed)
    tok = engine.tokenizer
    chains = [prm.chain(problems[c.prompt_index].question, tok.encode(prompts[c.prompt_index], add_special_tokens=False),
                        steps.path_steps(tok, c, td.task.steps)) for c in completions]
    for row, scores, spent in zip(rows, scorer.score(chains), scorer.flops(chains)):
        row["prm_scores"], row["prm_flops"] = scores, spent
