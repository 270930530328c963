"""Test-time knobs: what an evaluation sweeps, each declared once, where it belongs.

The core declares budget forcing's two (`budget`: the thinking cap, `waits`: s1's extensions at the
largest budget), swept by one generation (`forcing.sweep`). A method declares the knobs it owns in its
own file (CoT-Valve's LoRA scale, the recurrent model's iterations, DeepScaleR's stage checkpoints) and
`methods/__init__.py` lists them; the app registers them here (`app.bootstrap`), and a test can
register one of its own. Evaluation, results, samples, plots and the leaderboard read every knob from
this registry and name none of them:

- its eval config key (`Knob.key`, a list of values to sweep; `options` are further eval keys it reads);
- how it is applied (`apply(engine, value, eval_config)`, for the models `supported` says can take it);
- how a setting and a plot point are labelled (`symbol`, `point`) and where its column sits (`order`).

Every sample and result row carries each `generation` and `engine` knob (null where it does not apply)
and names the one its curve sweeps (`knob`); a `checkpoint` knob (which model was evaluated) appears on
the rows of the evaluations that set it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..registry import Registry

GENERATION, ENGINE, CHECKPOINT = "generation", "engine", "checkpoint"


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
    kind: str = ENGINE  # GENERATION (swept by budget forcing), ENGINE (set on the engine), CHECKPOINT
    order: int = 50  # leaderboard columns: smaller first

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


KNOBS = Registry("test-time knob")
KNOBS.register("budget")(Knob(
    "budget", "b", "thinking budgets (max thinking tokens), one result each", title="thinking budget",
    key="budgets", type=int, kind=GENERATION, order=0))
KNOBS.register("waits")(Knob(
    "waits", "w", "s1 extensions at the largest budget", title="Wait extensions", point="w", key="waits",
    type=int, kind=GENERATION, order=1))


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


def label(setting: dict) -> str:
    """A setting's short name: `b=128 w=2`, or the swept knob first when it is not budget forcing's
    (`α=0.5 b=64`), then the others by their order."""
    knob = swept(setting)
    first = knob.name if knob is not None and knob.kind != GENERATION else None
    known = sorted(all_knobs(), key=lambda k: (k.name != first, k.order))
    return " ".join(k.label(setting[k.name]) for k in known if setting.get(k.name) is not None)
