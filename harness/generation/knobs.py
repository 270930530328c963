"""Test-time knobs: what an evaluation sweeps, each declared once, where it belongs.

The core declares budget forcing's three (`budget`: the thinking cap, `waits`: s1's extensions at the
largest budget, `bound_forcing`: a prompt control's stated bound enforced as the cap), swept by one
generation (`forcing.sweep`). A method declares the knobs it owns in its
own file (CoT-Valve's LoRA scale, the recurrent model's iterations, DeepScaleR's stage checkpoints), in
its `Method` declaration; the registry fills itself with them on its first lookup (the `rzoo.knobs`
extension point, `harness/registry.py`), so no code path needs a set-up call first, and a test can
register one of its own. Evaluation, results, samples, plots and the leaderboard read every knob from
this registry and name none of them:

- its eval config key (`Knob.key`, a list of values to sweep; `options` are further eval keys it reads);
- how it is applied (`apply(engine, value, eval_config)`, for the models `supported` says can take it);
- how a setting and a plot point are labelled (`symbol`, `point`) and where its column sits (`order`).

Every sample and result row carries each `generation` and `engine` knob (null where it does not apply)
and names the one its curve sweeps (`knob`); a `checkpoint` knob (which model was evaluated) appears on
the rows of the evaluations that set it. A `prompt` knob is a way of controlling test-time compute other
than the cap (s1 §3.2: a bound stated in the prompt, a thinking class, rejection sampling): each value
is its own generation, with the knob's instruction placed in the prompt by the task
(`Task.instruct`) and the thinking bound it states (`bound`), which Control measures
(`evaluation/controls.py`). An `aggregate` knob generates nothing: its rows are computed from a setting's
samples after generation (`votes`: a majority vote over the first N of each problem's k samples, its thinking
tokens and FLOPs the N samples' sum, so parallel scaling sits on the same compute axis as the budget curve; `prm_votes`
and `prm_best`: the same groups, picked by a process reward model's scores). A `search` knob is a generation of its
own at the largest budget, one per value: a step-level search guided by a PRM (`search.py`: beam search, DVTS, MCTS,
each swept over N), its row's thinking tokens and FLOPs everything the search spent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..registry import Registry

GENERATION, ENGINE, CHECKPOINT, PROMPT, AGGREGATE, SEARCH = (
    "generation", "engine", "checkpoint", "prompt", "aggregate", "search")


@dataclass(frozen=True)
class Option:
    """An eval config field a knob reads besides its values (e.g. the exit threshold of the iterations)."""
    name: str
    type: Any
    default: Any
    help: str
    bounds: dict = field(default_factory=dict)  # ge / gt / le / lt, as `config.option` takes them


@dataclass(frozen=True)
class Knob:
    name: str  # its column in samples.jsonl and results.json
    symbol: str  # settings are labelled `symbol=value` ("α=0.5")
    help: str  # the help of its eval config key
    title: str = ""  # a few words for legends and column notes ("CoT-Valve scale"); default: the name
    point: str = ""  # plot points are labelled `point` + value ("α0.5"); "" writes the value alone
    key: str | None = None  # the eval config key listing the values to sweep (None: set by a method's hook)
    type: Any = float  # one value's type
    bounds: dict = field(default_factory=dict)  # each value's range (`config.option`'s ge / gt / le / lt)
    options: tuple[Option, ...] = ()
    supported: Callable[[Any], bool] | None = None  # model -> can it take this knob?
    apply: Callable[[Any, Any, Any], None] | None = None  # (engine, value, eval config): set before generating
    on_base: bool = True  # a method's base model is evaluated at it too (False: only trained models have it)
    export: Callable[[Any, Any, Any], Any] | None = None  # (checkpoint, value, out): a plain checkpoint with it baked in
    kind: str = ENGINE  # GENERATION (swept by budget forcing), ENGINE (set on the engine), CHECKPOINT, PROMPT,
    # AGGREGATE (computed from a setting's samples after generation), SEARCH (a generation of its own at the largest
    # budget, one per value: `search.py`; `generate` takes the task as a last argument)
    order: int = 50  # leaderboard columns: smaller first
    # PROMPT knobs: the instruction a value places in the prompt ((value, eval config) -> text, or None), the
    # thinking tokens a value allows ((value, eval config) -> int, or None: it states none), and a generation
    # of its own ((engine, prompts, value, eval config, problems, k, fmt, progress) -> completions; None:
    # budget forcing's)
    instruction: Callable[[Any, Any], str | None] | None = None
    bound: Callable[[Any, Any], int | None] | None = None
    generate: Callable[..., list] | None = None
    # PROMPT knobs: under bound forcing, stop where the trace's step countdown reaches 0 (the task's
    # `countdown_zero`, `countdown.py`) instead of capping at the bound (s1's step-conditional forcing)
    countdown: bool = False

    @property
    def caption(self) -> str:
        return self.title or self.name

    def label(self, value) -> str:
        return f"{self.symbol}={_number(value)}"

    def point_label(self, value) -> str:
        return f"{self.point}{_number(value)}"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


KNOBS = Registry("test-time knob", extension="rzoo.knobs")  # methods add theirs (pyproject.toml)
KNOBS.register("budget")(Knob(
    "budget", "b", "thinking budgets (max thinking tokens), one result each", title="thinking budget",
    key="budgets", type=int, kind=GENERATION, order=0))
KNOBS.register("waits")(Knob(
    "waits", "w", "s1 extensions at the largest budget", title="Wait extensions", point="w", key="waits",
    type=int, kind=GENERATION, order=1))
KNOBS.register("bound_forcing")(Knob(
    "bound_forcing", "BF", "with a prompt control (eval.token_bounds, ...): cap the thinking at the bound each "
    "setting states (s1's '+ budget forcing'); one curve per value", title="budget forcing at the stated bound",
    key="bound_forcing", type=bool, kind=GENERATION, order=3))
# Parallel scaling (Snell et al. 2024; Wang et al. 2023, self-consistency): N samples and a vote, from the k samples
# the largest budget already generated (`evaluation/results.py` `vote_results`).
KNOBS.register("votes")(Knob(
    "votes", "maj", "parallel scaling: a majority vote over the first N of each problem's k samples at the largest "
    "budget (needs eval.k >= N and eval.temperature > 0; one generation of k serves every N); its thinking tokens and "
    "FLOPs are the N samples' sum", title="majority vote over N samples", point="maj@", key="votes", type=int,
    bounds={"ge": 1}, kind=AGGREGATE, order=2))
# Parallel scaling with a process reward model (`prm.py`, eval.prm): the same groups of N, their answer picked by the
# PRM's aggregated scores (`metrics.vote_summary`), its FLOPs (scoring each sample once) counted.
KNOBS.register("prm_votes")(Knob(
    "prm_votes", "wmaj", "PRM-weighted vote over the first N of each problem's k samples at the largest budget: the "
    "answer whose samples' PRM scores sum highest (needs eval.prm, eval.k >= N)", title="PRM-weighted vote over N samples",
    point="wmaj@", key="prm_votes", type=int, bounds={"ge": 1}, kind=AGGREGATE, order=2))
KNOBS.register("prm_best")(Knob(
    "prm_best", "bon", "best-of-N by the PRM over the first N of each problem's k samples at the largest budget: the "
    "sample with the highest aggregated PRM score (needs eval.prm, eval.k >= N)", title="best-of-N by the PRM",
    point="bon@", key="prm_best", type=int, bounds={"ge": 1}, kind=AGGREGATE, order=2))

# Compute-optimal selection (Snell et al. 2024; `evaluation/compute_optimal.py`): at each N, each problem's strategy
# (a vote over N samples or a search at N) picked by its difficulty bin; set by eval.compute_optimal_bins, no values.
KNOBS.register("compute_optimal")(Knob(
    "compute_optimal", "opt", "compute-optimal selection at N: each problem's strategy picked by its difficulty bin",
    title="compute-optimal (per-bin strategy)", point="opt@", key=None, type=int, kind=AGGREGATE, order=2))


def _search(name: str):
    def generate(engine, prompts, value, cfg, problems, k, fmt, progress, task):
        from . import search

        return search.generate(name, engine, prompts, value, cfg, problems, k, fmt, progress, task)
    return generate


# Search over steps guided by a PRM (`search.py`), each swept over N at the largest budget, M = eval.search_candidates.
KNOBS.register("beam")(Knob(
    "beam", "beam", "step-level beam search guided by eval.prm: N candidate steps per step, the N/M best kept (M = "
    "eval.search_candidates; N a multiple of M); one curve over N", title="beam search (PRM)", point="beam@",
    key="beam", type=int, bounds={"ge": 1}, kind=SEARCH, order=5, generate=_search("beam")))
KNOBS.register("dvts")(Knob(
    "dvts", "dvts", "diverse verifier tree search guided by eval.prm: N/M subtrees, each keeping the PRM's best of M "
    "candidate steps (M = eval.search_candidates; N a multiple of M); one curve over N", title="DVTS (PRM)",
    point="dvts@", key="dvts", type=int, bounds={"ge": 1}, kind=SEARCH, order=5, generate=_search("dvts")))
KNOBS.register("mcts")(Knob(
    "mcts", "mcts", "Monte-Carlo tree search over steps guided by eval.prm: N simulations (UCT selection, M = "
    "eval.search_candidates candidate steps per expansion, the PRM's value backed up); one curve over N",
    title="MCTS (PRM)", point="mcts@", key="mcts", type=int, bounds={"ge": 1}, kind=SEARCH, order=5,
    generate=_search("mcts"),
    options=(Option("mcts_exploration", float, 1.0, "MCTS: UCT's exploration constant c (Q + c sqrt(ln N / (n + 1)))",
                    {"ge": 0}),)))
# A staged recipe's checkpoints (`training/stages.py`: R1's pipeline, DeepScaleR's context stages): which stage's
# checkpoint was evaluated.
KNOBS.register("stage")(Knob(
    "stage", "stage", "a staged recipe (DeepScaleR, R1): the checkpoint at the end of each stage", title="stage",
    point="stage ", type=int, kind=CHECKPOINT, order=4))


def all_knobs() -> list[Knob]:
    """Every registered knob, in registration order (budget, waits, then the methods')."""
    return KNOBS.values()


def get(name: str) -> Knob:
    return KNOBS.get(name)


def find(name: str | None) -> Knob | None:
    """The registered knob `name`, or None (a results file may name a knob this process does not know)."""
    return KNOBS.get(name) if name in KNOBS else None


def names() -> list[str]:
    return [k.name for k in all_knobs()]


def of_kind(*kinds: str) -> list[Knob]:
    return [k for k in all_knobs() if k.kind in kinds]


def supported(model) -> frozenset[str]:
    """The engine knobs `model` can take."""
    return frozenset(k.name for k in of_kind(ENGINE) if k.supported is not None and k.supported(model))


def apply(engine, name: str, value, cfg=None) -> None:
    """Set knob `name` to `value` on `engine` (a clear error where the model cannot take it)."""
    if name not in engine.knobs:
        raise ValueError(f"this model has no test-time knob {name!r}; it has: "
                         f"{', '.join(sorted(engine.knobs)) or 'none besides budget and waits'}")
    get(name).apply(engine, value, cfg)


def swept(setting: dict) -> Knob | None:
    """The registered knob a setting's curve sweeps (its `knob` field), or None when it is not registered."""
    return find(setting.get("knob") or "budget")


def generation_key(setting: dict) -> tuple:
    """The knobs one generation holds fixed while budget forcing's sweep runs: engine, checkpoint and prompt
    knobs (each prompt value is a prompt of its own)."""
    return tuple(setting.get(k.name) for k in of_kind(ENGINE, CHECKPOINT, PROMPT, SEARCH))


def prompt_control(setting: dict) -> tuple[Knob, Any] | None:
    """The prompt knob a setting sets and its value, or None."""
    return next(((k, setting[k.name]) for k in of_kind(PROMPT) if setting.get(k.name) is not None), None)


def search_of(setting: dict) -> tuple[Knob, Any] | None:
    """The search knob a setting sets and its value, or None."""
    return next(((k, setting[k.name]) for k in of_kind(SEARCH) if setting.get(k.name) is not None), None)


def bound_of(setting: dict, cfg) -> int | None:
    """The thinking tokens a setting allows: its prompt control's stated bound (None where it states none),
    else its budget."""
    if search_of(setting) is not None:  # a search's budget caps each path, not what the whole search spends
        return None
    control = prompt_control(setting)
    if control is None:
        return setting.get("budget")
    knob, value = control
    return knob.bound(value, cfg) if knob.bound is not None else None


def curve_key(setting: dict) -> tuple[str, tuple]:
    """Which curve a setting is a point of: the knob it sweeps and the values it holds fixed. A budget curve
    (with its Wait extensions) holds the knobs that are not budget forcing's; a prompt control's holds every
    other knob but the budget, which follows its bound under bound forcing; any other knob's holds the rest."""
    knob = swept(setting)
    name = setting.get("knob") or "budget"
    if knob is not None and knob.kind == GENERATION:
        return "budget", tuple((k.name, setting.get(k.name)) for k in all_knobs() if k.kind != GENERATION)
    skip = {name, "budget"} if knob is not None and knob.kind == PROMPT else {name}
    return name, tuple((k.name, setting.get(k.name)) for k in all_knobs() if k.name not in skip)


def series(setting: dict) -> str:
    """What one curve holds fixed while its knob varies, in words: "" for a budget (and Wait) curve, the
    other knobs' values for a method's knob ("α @ b=64"), a prompt control's fixed knobs ("N @ BF=True")."""
    knob = swept(setting)
    name, fixed = curve_key(setting)
    shown = [(find(n), v) for n, v in fixed if v is not None and find(n) is not None]
    if knob is not None and knob.kind == GENERATION:
        return " ".join(k.label(v) for k, v in shown if k.kind == ENGINE)
    symbol = knob.symbol if knob is not None else str(name)
    if knob is not None and knob.kind == PROMPT:
        return " @ ".join([symbol] + [" ".join(k.label(v) for k, v in shown)][:1 if shown else 0])
    return f"{symbol} @ {' '.join(k.label(v) for k, v in shown if k.kind == GENERATION)}"


def label(setting: dict) -> str:
    """A setting's short name: `b=128 w=2`, or the swept knob first when it is not budget forcing's
    (`α=0.5 b=64`), then the others by their order."""
    knob = swept(setting)
    first = knob.name if knob is not None and knob.kind != GENERATION else None
    known = sorted(all_knobs(), key=lambda k: (k.name != first, k.order))
    return " ".join(k.label(setting[k.name]) for k in known if setting.get(k.name) is not None)
