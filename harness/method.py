"""The declaration every method file ends with: `METHOD = Method(...)`, everything the app, the zoo and the
tests need to know about a recipe, in one place.

    METHOD = Method(
        name="grpo", paper="DeepSeek-R1 (2025) §2.2; DeepSeekMath (2024) eq. 3",
        config=Config, presets=PRESETS, train=train,
        tiny=RL_TINY,                     # overrides that make two steps cheap on the tests' fixture model
    )

What it holds:
- `config`, `presets`, `train(cfg, ctx) -> checkpoint path`: the flat config dataclass with the paper's
  defaults, the "paper" and "cpu" presets (`eval.`-prefixed keys set the evaluation), the training entry;
- `variants`: a registry of variants and the config field that picks one (`harness zoo` runs each);
- `knobs`: the test-time knobs the method owns (`generation.knobs.Knob`), registered with the core on the knob
  registry's first lookup;
- `curves(run_path)`: extra evaluations of a finished run (e.g. DeepScaleR's stage checkpoints on one curve);
- `label(cfg)`: how plots and the leaderboard name a run (e.g. by variant); default: the method's name;
- `checkpoint`: what the run's checkpoint is: a full `MODEL`, an `ADAPTER` (LoRA, loaded with its base), a
  `SCORER` (a process reward model: the run's evaluation is of its base, the policy, with the checkpoint as
  `eval.prm`) or `NONE` (a recipe without training, e.g. s1's test-time controls, whose `evaluation` is the
  `harness eval` it runs);
- `figures`: the zoo page's figures its run appears in (besides before/after, where every trained run is);
- `tiny`: key=value overrides for the contract test on a tiny fixture model; values may name the fixtures
  as `{model}`, `{recurrent_model}`, `{task}` (a reward that varies on a random model), `{sft_file}` and
  `{steps}` (see tests/test_contract.py).

The registry (`methods/__init__.py`) holds one line per method pointing at its `METHOD`; nothing reads an
optional attribute of a method module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # annotations only: this module sits at the foundation and imports nothing above it
    from pathlib import Path

    from .registry import Registry

MODEL, ADAPTER, NONE, SCORER = "model", "adapter", "none", "scorer"

# The zoo page's figures a recipe's run appears in (`Method.figures`; `leaderboard/zoo_figures.py` reads them from
# zoo.json and names no method): a point or line on the compression frontier; the frontier's long model is this
# run's base; its budget-forcing and Wait curves; s1's controls; a recurrent model's iterations; votes and PRM-guided
# searches over its policy (the parallel and search families).
FRONTIER, LONG_BASE, BUDGET_CURVES, CONTROLS, ITERATIONS, SEARCH = (
    "frontier", "frontier_long_base", "budget_curves", "controls", "iterations", "search")
FIGURES = (FRONTIER, LONG_BASE, BUDGET_CURVES, CONTROLS, ITERATIONS, SEARCH)


@dataclass(frozen=True)
class Variants:
    """A method's variants: a registry (one entry per variant) and the config field that picks one."""
    field: str
    registry: "Registry"

    def names(self) -> list[str]:
        return self.registry.names()


@dataclass(frozen=True)
class Method:
    name: str
    paper: str  # the paper (and section) the recipe reads beside; shown on model cards and the zoo page
    config: type | None  # the flat config dataclass; None: a recipe with no training step
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    train: Callable[[Any, Any], Any] | None = None
    variants: Variants | None = None
    knobs: tuple = ()  # generation.knobs.Knob, owned by this method
    curves: Callable[["Path"], list] | None = None  # run folder -> [evaluation.evaluate.CheckpointCurve]
    label: Callable[[Any], str] | None = None  # cfg -> the run's name on plots (default: `name`)
    checkpoint: str = MODEL  # MODEL, ADAPTER or NONE
    tiny: Mapping[str, Any] = field(default_factory=dict)
    evaluation: tuple[str, ...] = ()  # NONE: the `harness eval` key=value tokens this recipe is
    figures: tuple[str, ...] = ()  # the zoo figures its run appears in (FIGURES; the before/after one: every run)

    def __post_init__(self) -> None:
        if self.checkpoint not in (MODEL, ADAPTER, NONE, SCORER):
            raise ValueError(f"method {self.name!r}: checkpoint must be {MODEL!r}, {ADAPTER!r}, {SCORER!r} or {NONE!r}")
        if (self.train is None) != (self.checkpoint == NONE) or (self.config is None) != (self.train is None):
            raise ValueError(f"method {self.name!r}: a recipe without training has no config, no train and "
                             f"checkpoint={NONE!r}; one that trains has all three")
        unknown = set(self.figures) - set(FIGURES)
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown zoo figure(s) {sorted(unknown)}; valid: {FIGURES}")
        if self.checkpoint == NONE and not self.evaluation:
            raise ValueError(f"method {self.name!r}: a recipe without training must say which evaluation it is")
        if self.variants is not None and self.config is not None:
            import dataclasses

            if self.variants.field not in {f.name for f in dataclasses.fields(self.config)}:
                raise ValueError(f"method {self.name!r}: variants are picked by {self.variants.field!r}, which "
                                 f"its config does not have")

    @property
    def trains(self) -> bool:
        return self.train is not None

    def run_label(self, cfg: Any) -> str:
        """How plots, the leaderboard and the zoo name a run of this method with config `cfg`."""
        return self.label(cfg) if self.label is not None and cfg is not None else self.name

    def variant_names(self) -> list[str | None]:
        """Each variant's name, or [None] for a method without variants."""
        return self.variants.names() if self.variants is not None else [None]
