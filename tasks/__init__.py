"""Tasks (benchmarks and training sets), imported as `rzoo.tasks`.

Each task is one module defining `TASK`; the registry below is explicit and lazy (listing tasks
imports nothing heavy). `jsonl:<path>` builds a task from any user file.
"""
from __future__ import annotations

from rzoo.harness.registry import Registry

REGISTRY = Registry("task")
REGISTRY.add("arith", "rzoo.tasks.arith:TASK", "procedural one/two-step arithmetic word problems (offline; default)")
REGISTRY.add("math500", "rzoo.tasks.math500:TASK", "MATH-500: 500 competition problems, levels 1-5")
REGISTRY.add("aime24", "rzoo.tasks.aime24:TASK", "AIME 2024 I+II: 30 problems, integer answers")
REGISTRY.add("aime25", "rzoo.tasks.aime25:TASK", "AIME 2025 I+II: 30 problems, integer answers")
REGISTRY.add("amc23", "rzoo.tasks.amc23:TASK", "AMC 2023: 40 problems, numeric answers (Qwen2.5-Math's set)")
REGISTRY.add("amc", "rzoo.tasks.amc:TASK", "AMC 12 2022-2023: 83 problems (DeepScaleR's 'AMC 2023')")
REGISTRY.add("minerva", "rzoo.tasks.minerva:TASK", "Minerva Math: 272 OCW science problems (answers: any of a list)")
REGISTRY.add("olympiadbench", "rzoo.tasks.olympiadbench:TASK",
             "OlympiadBench: 675 English text-only math problems (answers: any of a list)")
REGISTRY.add("gsm8k", "rzoo.tasks.gsm8k:TASK", "GSM8K test: 1,319 grade-school word problems")
REGISTRY.add("runsum", "rzoo.tasks.runsum:TASK", "the testbed: sum mod 10 of n digits; running sums buy accuracy")
REGISTRY.add("math_train", "rzoo.tasks.math_train:TASK", "MATH train: 7,474 problems, levels 1-5 (training only)")
REGISTRY.add("aime_train", "rzoo.tasks.aime_train:TASK", "AIME 1983-2023: 975 problems (training only)")
REGISTRY.add("deepscaler_data", "rzoo.tasks.deepscaler_data:TASK", "DeepScaleR-Preview-Dataset, ~40K (hub; training only)")
REGISTRY.add("gpqa_diamond", "rzoo.tasks.gpqa_diamond:TASK", "GPQA-Diamond: 198 four-option science questions")

JSONL_PREFIX = "jsonl:"

# Models tasks build rather than download (`model=<name>[:<variant>]`): name -> (builder "module:function",
# description), added to the core's registry of built models on its first lookup (`register_models`, the
# `rzoo.models` extension point in pyproject.toml).
MODEL_BUILDERS = {
    "testbed": ("rzoo.tasks.testbed_model:build",
                "the testbed's tiny Llama, trained from scratch on runsum traces (testbed:<variant>)"),
    "testbed_recurrent": ("rzoo.tasks.testbed_model:build_recurrent",
                          "an untrained recurrent-depth model with the testbed's tokenizer (latent recurrence "
                          "starts here)"),
}


def register_models(registry) -> None:
    """The `rzoo.models` extension point: the models tasks build, added to `harness.models.BUILDERS`."""
    for name, (target, description) in MODEL_BUILDERS.items():
        registry.add(name, target, description)


def get(name: str, question_field: str = "question", answer_field: str = "answer"):
    """The task registered under `name`, or a `jsonl:<path>` task (raises UnknownName with suggestions)."""
    if name.startswith(JSONL_PREFIX):
        from .jsonl import JsonlTask

        return JsonlTask(name[len(JSONL_PREFIX):], question_field, answer_field)
    return REGISTRY.load(name)


def load_examples(spec: str, data_dir=None):
    """SFT examples (`rzoo.harness.data.SFTData`) named by `spec`:

    - `<task>:<variant>`: a task that writes its own reasoning traces (`Task.examples(variant, split)`),
      e.g. `runsum:minimal`, `runsum:early_stop`;
    - `jsonl:<path>`: rows with `question`, `thinking`, `answer` (and optional `id`), prompted like the
      math tasks;
    - a hub dataset id (e.g. `simplescaling/s1K-1.1`) when the hub is reachable (see `traces.py`).
    """
    from .traces import load_examples as _load

    return _load(spec, data_dir)
