"""The model card (README.md) every checkpoint carries: the method and its paper, the base model, the training
data, the test-time knobs the checkpoint takes and the values its run evaluated, the run's results, and how to
load it with transformers / peft or evaluate it with `harness eval`.

Written from the checkpoint's method.json by `save_checkpoint` (so every saved checkpoint has one, in place of
peft's empty template), and again by the app once the run's evaluation is done, with its results.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..runstore import atomic_write_text

CARD = "README.md"
MAX_ROWS = 24  # result rows shown per task (the whole table is in the run's results.json)


def _knob_rows(meta: dict) -> list[str]:
    card = meta.get("card") or {}
    evaluation = (meta.get("config") or {}).get("eval") or {}
    rows = []
    for k in card.get("knobs", []):
        values = evaluation.get(k["key"]) if k.get("key") else None
        where = f"`eval.{k['key']}`" if k.get("key") else "set by the run"
        shown = json.dumps(values) if values is not None else "-"
        rows.append(f"| `{k['name']}` | {where} | {k.get('help', '')} | {shown} |")
    return rows


def _result_rows(results: dict[str, list[dict]]) -> list[str]:
    from ..generation import knobs

    rows = []
    for task, entries in results.items():
        for r in entries[:MAX_ROWS]:
            rows.append(f"| {task} | {knobs.label(r)} | {r['accuracy']:.3f} | {r['thinking_tokens_mean']:.1f} | "
                        f"{r.get('n_problems', '')} |")
    return rows


def render(meta: dict, folder: Path, results: dict[str, list[dict]] | None = None, adapter: bool = False) -> str:
    """The card's markdown for a checkpoint at `folder` whose method.json is `meta` (`adapter`: a LoRA adapter)."""
    card = meta.get("card") or {}
    method = meta.get("method", "?")
    base = meta.get("base_model") or {}
    lines = ["---", f"library_name: {'peft' if adapter else 'transformers'}",
             f"base_model: {json.dumps(base.get('spec', ''))}", f"tags: [rzoo, {json.dumps(method)}]", "---", "",
             f"# `{method}` checkpoint (rzoo)", "",
             f"Trained with rzoo's `{method}` recipe" + (f": {card['paper']}." if card.get("paper") else "."), "",
             f"- **Method**: `{method}`" + (f", variant `{card['label']}`" if card.get("label", method) != method else ""),
             f"- **Base model**: `{base.get('spec', '?')}` ({base.get('source', '?')})",
             f"- **Training data**: {base.get('train_data', '?')} (sha256 {str(base.get('train_data_sha256'))[:16]})",
             f"- **Step**: {meta.get('step', '?')}, dtype {meta.get('dtype', '?')}, git {meta.get('git_sha') or '?'}",
             f"- **Checkpoint**: {'a LoRA adapter (peft), loaded with its base model' if adapter else 'a full model'}",
             ""]
    knob_rows = _knob_rows(meta)
    lines += ["## Test-time knobs", ""]
    if knob_rows:
        lines += ["Besides the thinking budget (`eval.budgets`) and Wait extensions (`eval.waits`):", "",
                  "| knob | set with | what | values its run evaluated |", "|---|---|---|---|", *knob_rows, ""]
    else:
        lines += ["The thinking budget (`eval.budgets`) and Wait extensions (`eval.waits`); the method declares no "
                  "knob of its own.", ""]
    if results:
        lines += ["## Results of its run", "", "| task | setting | accuracy | mean thinking tokens | problems |",
                  "|---|---|---|---|---|", *_result_rows(results), ""]
    lines += ["## Load it", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer",
              f"model = AutoModelForCausalLM.from_pretrained(\"{folder}\")"
              + ("  # transformers applies the adapter to the base its adapter_config.json names" if adapter else ""),
              f"tokenizer = AutoTokenizer.from_pretrained(\"{folder}\")", "```", ""]
    if adapter:
        lines += ["With peft, or where the base has moved (rzoo resolves it from the run's base model spec):", "",
                  "```python", "from peft import PeftModel",
                  "model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "
                  f"\"{folder}\")", "```", ""]
    example = " ".join(f"eval.{k['key']}=[...]" for k in card.get("knobs", []) if k.get("key"))
    lines += ["Evaluate it, at its knobs:", "", "```bash", f"harness eval model={folder} task=TASK {example}".rstrip(),
              "```", "", "```python", "import rzoo",
              f"rzoo.evaluate(\"{folder}\", \"TASK\")", "```", ""]
    return "\n".join(lines)


def write(folder: Path, results: dict[str, list[dict]] | None = None, shown_as: Path | None = None) -> Path:
    """(Re)write `folder`/README.md from its method.json (and the run's results, where given); `shown_as`: the
    folder's final path, where it is written in a temp folder first."""
    folder = Path(folder)
    meta = json.loads((folder / "method.json").read_text(encoding="utf-8"))
    adapter = (folder / "adapter_config.json").is_file()
    atomic_write_text(folder / CARD, render(meta, Path(shown_as or folder), results, adapter))
    return folder / CARD
