"""Every branch of evaluation's grading, under every protocol's settings, on the engine's production path: a scripted
model (tests/scripted.py) thinks, closes or not, ends its turn inside the block or hits the cap, with or without the
right answer in its thinking; budget forcing (`forcing.generate`) and grading (`results.grade_rows`, the real runsum
grader) decide. The expected verdicts are the rules the docs state (docs/grading.md, docs/protocols.md), written
here as a table, not read from the code:

- a block the model closed itself: its answer is graded;
- at the cap: force_close -> closed with the cue, and the answer written after it is graded (forced);
  otherwise unclosed, graded wrong unless grade_unclosed, which grades the whole reply (thinking included);
- the turn ended inside the block: answer_unclosed -> closed for the model, which answers (forced, turn ended);
  otherwise unclosed, as at the cap without force_close.
"""
from __future__ import annotations

import pytest

from scripted import ScriptedLM
from rzoo.harness.engines.hf import HFEngine
from rzoo.harness.evaluation import protocol as P
from rzoo.harness.generation import forcing as G
from rzoo.harness.generation import thinking as T

CAP = 12  # more than the answer and an end of turn, so a turn that ends inside the block ends before the cap
BEHAVIOURS = ("closes", "capped with answer", "capped without answer", "ends with answer", "ends without answer")


def expected(behaviour: str, force_close: bool, answer_unclosed: bool, grade_unclosed: bool) -> tuple[str, bool]:
    """(thinking_end, correct) by the documented rules (the module docstring)."""
    with_answer = behaviour.endswith("with answer")
    if behaviour == "closes":
        return T.CLOSED, True
    closed_for_it = force_close if behaviour.startswith("capped") else answer_unclosed
    if closed_for_it:
        return T.FORCED, True  # it answers after the close
    return T.INCOMPLETE, grade_unclosed and with_answer


@pytest.fixture(scope="module")
def runsum():
    from rzoo.tasks.runsum import TASK

    problems, _ = TASK.load(None, split="test")
    return TASK, problems[0]


def _script(tok, prompt_ids: list[int], behaviour: str, answer: str, delimiter: str = "</think>"):
    """`delimiter`: the protocol's end of thinking (`</think>`; s1's own `<|im_start|>answer`), which the model writes
    when it closes the block itself."""
    word = tok.encode(" x", add_special_tokens=False)
    answer_ids = tok.encode(answer, add_special_tokens=False)
    close = tok.encode(f"\n{delimiter}\n\n", add_special_tokens=False)
    thinking = {"closes": word * 2 + close, "capped with answer": answer_ids + word * CAP,
                "capped without answer": word * (CAP + 1), "ends with answer": answer_ids + [tok.eos_token_id],
                "ends without answer": word + [tok.eos_token_id]}[behaviour]

    def next_token(ids: list[int]):
        done = ids[len(prompt_ids):]
        text = tok.decode(done)
        if delimiter not in text:  # thinking
            return thinking[len(done)] if len(done) < len(thinking) else word[0]
        written = text.split(delimiter, 1)[1].split("Final Answer:", 1)[-1].strip()
        for i in range(len(answer_ids)):  # the answer after the close, then the end of turn
            if tok.decode(answer_ids[:i]).strip() == written:
                return answer_ids[i]
        return tok.eos_token_id

    return next_token


@pytest.mark.parametrize("name", P.names())
def test_every_grading_branch_under_each_protocol(name, tokenizer, runsum):
    import json

    from rzoo.harness.evaluation.results import grade_rows
    from rzoo.harness.jobs import resolve
    from rzoo.harness.data import Source, TaskData
    from rzoo.harness.models.flops import Shape

    task, problem = runsum
    cfg = resolve("eval", ["model=default", f"eval.protocol={name}", "eval.task=runsum"]).eval
    raw = json.loads((P.FOLDER / f"{name}.json").read_text(encoding="utf-8"))["settings"]  # the protocol's file
    for key in ("force_close", "answer_unclosed", "grade_unclosed"):
        if key in raw:
            assert getattr(cfg, key) == raw[key], (name, key)
    proto = P.load(name)
    fmt = proto.thinking_format(T.ThinkingFormat.detect(tokenizer))
    prompt = T.build_prompt(tokenizer, task.messages(problem), fmt)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    budget = T.Budget(CAP, 16, force_close=cfg.force_close, answer_unclosed=cfg.answer_unclosed)
    td = TaskData("runsum", task, [problem], Source("generated", "test"), 1)
    for behaviour in BEHAVIOURS:
        model = ScriptedLM.of(tokenizer, _script(tokenizer, prompt_ids, behaviour, f"\\boxed{{{problem.answer}}}",
                                                 fmt.close.strip()))
        (c,) = G.generate(HFEngine(model, tokenizer), [prompt], budget, fmt=fmt)
        (row,) = grade_rows(td, [problem], [c], {}, Shape(1, 1, 1), cfg.grade_unclosed)
        want = expected(behaviour, cfg.force_close, cfg.answer_unclosed, cfg.grade_unclosed)
        assert (row["thinking_end"], row["correct"]) == want, (name, behaviour, c.thinking_text, c.answer_text)
        assert row["turn_ended"] is (behaviour.startswith("ends") and cfg.answer_unclosed)
