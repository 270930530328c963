"""s1's test-time controls (`methods/s1_controls.py`): prompts as s1 words them, settings with and without
bound forcing, rejection sampling's tries, and Control measured from the samples, never assumed."""
from __future__ import annotations

import json

import pytest

from rzoo.harness.config import ConfigError


def _cfg(**values):
    from rzoo.harness.evaluation.config import eval_config_class

    cfg = eval_config_class()(**values)
    cfg.validate()
    return cfg


def test_settings_sweep_each_control_with_and_without_bound_forcing():
    cfg = _cfg(budgets=[4, 16], token_bounds=[2, 8], bound_forcing=[False, True], think_classes=["short", "long"],
               class_bounds=[3, 12], step_bounds=[1], step_tokens=5, rejection_budgets=[6])
    got = [(s["knob"], s.get(s["knob"]), s["bound_forcing"], s["budget"]) for s in cfg.settings()]
    assert got == [("budget", 4, None, 4), ("budget", 16, None, 16),
                   ("token_bound", 2, False, 16), ("token_bound", 2, True, 2),
                   ("token_bound", 8, False, 16), ("token_bound", 8, True, 8),
                   # a step bound is forced at its countdown's end, not capped at 1 x 5 tokens: the largest budget
                   ("step_bound", 1, False, 16), ("step_bound", 1, True, 16),
                   ("think_class", "short", False, 16), ("think_class", "short", True, 3),
                   ("think_class", "long", False, 16), ("think_class", "long", True, 12),
                   ("rejection", 6, None, 6)]


def test_bad_control_values_are_clear_errors():
    with pytest.raises(ConfigError, match="states no bound"):
        _cfg(think_classes=["short"], bound_forcing=[True])
    with pytest.raises(ConfigError, match="'brief' is not a thinking class; valid: short, long"):
        _cfg(think_classes=["brief"])
    with pytest.raises(ConfigError, match="one bound per class"):
        _cfg(think_classes=["short"], class_bounds=[5])


def test_prompts_are_s1s_and_follow_the_question():
    from rzoo import tasks
    from rzoo.harness.data import Problem
    from rzoo.methods import s1_controls as C

    cfg = _cfg(token_bounds=[512])
    task = tasks.get("math500")
    messages = task.instruct(task.messages(Problem("p", "What is 1+1?", "2")), "token_bound", 512,
                             C.TOKEN_BOUND.instruction(512, cfg))
    assert messages[-1]["content"] == "What is 1+1?\n\nThink for up to 512 tokens."
    assert C.STEP_BOUND.instruction(16, cfg) == "Think for up to 16 steps."
    assert C.THINK_CLASS.instruction("short", cfg).startswith("Answer after a short amount of thinking.")
    assert "simplescaling/s1" in " ".join(C.prompts()["sources"])


def test_the_testbed_reads_its_instruction_before_the_digit_slots():
    from rzoo.tasks.runsum import TASK
    from rzoo.tasks import runsum_controls as RC

    problem = TASK.load(None, "test")[0][0]
    plain = TASK.messages(problem)[-1]["content"]
    placed = TASK.instruct(TASK.messages(problem), "token_bound", 4, "ignored")[-1]["content"]
    assert placed == "Think for up to 4 tokens.\n" + plain  # the slots keep their distance to the chain
    stepped = TASK.instruct(TASK.messages(problem), "step_bound", 4, "ignored")[-1]["content"]
    # in steps of 4 slots as the trace is, with as many tokens as the plain slots (each sum at the same distance)
    grouped = stepped.split("\n")[1]
    assert stepped.startswith("Think for up to 4 steps.\n|") and grouped.replace("|", "") == plain[:-6]
    assert grouped.count("|") + grouped.count(" ") == plain.count(" ") == 14
    data = TASK.examples("conditional", split="validation")
    seen = set()
    for ex in data.examples:
        kind, value = ex.meta["control"], ex.meta["value"]
        seen.add(kind)
        tokens = len(ex.thinking.replace(" ", ""))  # one character per token: sums and countdown digits
        if kind == "token_bound":
            assert value == RC.power_above(tokens) and tokens < value
        elif kind == "step_bound":  # each step opens with the steps left, counting down from the bound
            steps = -(-ex.thinking.count(" ") // RC.STEP)
            assert value == RC.power_above(steps) and ex.thinking.startswith(str(value))
            assert tokens == ex.thinking.count(" ") + steps <= value * RC.STEP_TOKENS
            assert ex.thinking.count(" ") <= ex.meta["n"] + 1
        elif kind == "think_class":
            assert tokens <= RC.CLASS_BOUNDS[value]
    assert seen == set(RC.KINDS)


@pytest.fixture()
def scripted_eval(tokenizer, tmp_path):
    """Evaluate a scripted model that always thinks for 7 tokens (6 words and the newline before its close), then
    closes its block and ends its turn."""
    from scripted import ScriptedLM

    from rzoo import tasks
    from rzoo.harness.data import TaskData
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.evaluation.evaluate import evaluate_engines
    from rzoo.harness.generation import thinking as T

    data = tmp_path / "qs.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i)})
                            + "\n" for i in range(3)))
    task = tasks.get(f"jsonl:{data}")
    problems, source = task.load(None)
    word = tokenizer.encode(" banana", add_special_tokens=False)[0]
    close = tokenizer.encode("\n" + T.THINK_CLOSE, add_special_tokens=False)
    prompts = set()

    def script(ids):
        text = tokenizer.decode(ids)
        if T.THINK_OPEN not in text:
            return None
        prompts.add(text.rpartition(T.THINK_OPEN)[0])
        if T.THINK_CLOSE in text.rpartition(T.THINK_OPEN)[2]:
            return tokenizer.eos_token_id  # an empty answer: these tests are about lengths
        if ids.count(word) < 6:
            return word
        after = len(ids) - 1 - max(i for i, x in enumerate(ids) if x == word)
        return close[after] if after < len(close) else tokenizer.eos_token_id

    def run(**values):
        cfg = _cfg(task=[f"jsonl:{data}"], answer_tokens=4, **values)
        engine = HFEngine(ScriptedLM.of(tokenizer, script), tokenizer)
        evaluate_engines([({}, lambda: engine)], {"spec": "scripted"}, cfg,
                         [TaskData(f"jsonl:{data}", task, problems, source, len(problems))], tmp_path / "eval",
                         progress=False)
        folder = next((tmp_path / "eval").iterdir())
        results = json.loads((folder / "results.json").read_text())
        samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        return results, samples, prompts

    return run


def test_control_is_one_for_budget_forcing_and_measured_for_a_prompt(scripted_eval):
    results, samples, prompts = scripted_eval(budgets=[3, 10], token_bounds=[2, 8], bound_forcing=[False, True])
    curves = {(c["knob"], c["series"]): c for c in results["curves"]}
    assert curves[("budget", "")]["control"] == 1.0  # by construction: the cap is the bound
    assert curves[("token_bound", "N @ BF=True")]["control"] == 1.0
    # the prompt alone: the model thinks 7 tokens whatever it is told, within 8 but not within 2
    assert curves[("token_bound", "N @ BF=False")]["control"] == 0.5
    by_setting = {(r["token_bound"], r["bound_forcing"], r["budget"]): r for r in results["results"]}
    assert by_setting[(2, False, 10)]["within_bound"] == 0.0 and by_setting[(2, False, 10)]["thinking_tokens_mean"] == 7
    assert by_setting[(2, True, 2)]["thinking_tokens_mean"] == 2 and by_setting[(2, True, 2)]["forced_rate"] == 1
    assert {(s["token_bound"], s["bound"], s["within_bound"]) for s in samples if s["bound_forcing"] is False} == \
           {(2, 2, False), (8, 8, True)}
    assert any("What is 1 plus 1?\n\nThink for up to 2 tokens." in p for p in prompts)
    assert not any("Think for up to 3 tokens" in p for p in prompts)  # the budget curve states nothing


def test_rejection_sampling_records_its_tries_and_misses(scripted_eval):
    results, samples, _ = scripted_eval(budgets=[10], rejection_budgets=[4, 8], rejection_tries=3)
    rows = {r["rejection"]: r for r in results["results"] if r["rejection"] is not None}
    # 7 thinking tokens never fit under 4: every sample used its 3 tries and is kept over the bound
    assert rows[4]["tries_mean"] == 3 and rows[4]["within_bound"] == 0.0
    assert rows[8]["tries_mean"] == 1 and rows[8]["within_bound"] == 1.0
    assert {s["tries"] for s in samples if s["rejection"] == 4} == {3}
    (curve,) = [c for c in results["curves"] if c["knob"] == "rejection"]
    assert curve["control"] == 0.5 and curve["settings"] == 2


def test_rejection_keeps_a_draw_that_ended_inside_the_block_within_its_bound():
    """Under the s1 protocol (`eval.answer_unclosed=true`) a turn that ended inside the block is closed by the
    harness and marked forced (`turn_ended`); the cap did not stop it, so within the bound it fits. A draw the
    cap force-closed never fits, and none fits past the bound."""
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.generation.forcing import Completion
    from rzoo.harness.generation.rejection import fits

    def draw(tokens, end, turn_ended=False):
        return Completion(0, 0, thinking_ids=[1] * tokens, thinking_end=end, turn_ended=turn_ended)

    assert fits(draw(3, T.FORCED, turn_ended=True), 4)  # ended its turn at 3 tokens, bound 4: kept
    assert not fits(draw(5, T.FORCED, turn_ended=True), 4)  # ended its turn past the bound
    assert not fits(draw(4, T.FORCED), 4)  # the cap closed it
    assert fits(draw(4, T.CLOSED), 4) and fits(draw(2, T.INCOMPLETE), 4)


def test_step_conditional_forcing_stops_where_the_countdown_reaches_zero(tokenizer, tmp_path):
    """s1's step-conditional forcing: a scripted model writes three steps, each opened by "<k> steps left" counting
    down from the prompt's bound, whatever the bound. Told 1 step, its countdown reaches 0 at the second step:
    forcing cuts the thinking right there (before "0 steps left") and makes it answer. Told 4 steps it never
    reaches 0 and closes on its own: forcing leaves it as generated. The old rule (a cap of N x step_tokens, 100
    tokens here) would cut neither."""
    import re

    from scripted import ScriptedLM

    from rzoo import tasks
    from rzoo.harness.data import TaskData
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.evaluation.evaluate import evaluate_engines
    from rzoo.harness.generation import thinking as T

    data = tmp_path / "qs.jsonl"
    data.write_text(json.dumps({"id": "q0", "question": "What is 1 plus 1?", "answer": "2"}) + "\n")
    task = tasks.get(f"jsonl:{data}")
    problems, source = task.load(None)
    opening = tokenizer.encode(T.THINK_OPEN, add_special_tokens=False)

    def script(ids):
        starts = [i + len(opening) for i in range(len(ids)) if ids[i:i + len(opening)] == opening]
        if not starts:
            return None
        head, done = tokenizer.decode(ids[:starts[-1]]), ids[starts[-1]:]
        if T.THINK_CLOSE in tokenizer.decode(done):
            return tokenizer.eos_token_id
        m = re.search(r"Think for up to (\d+) steps", head)
        n = int(m.group(1)) if m else 3
        target = tokenizer.encode("".join(f"{n - j} steps left\nbanana split\n" for j in range(3)) + T.THINK_CLOSE,
                                  add_special_tokens=False)
        return target[len(done)] if len(done) < len(target) else tokenizer.eos_token_id

    cfg = _cfg(task=[f"jsonl:{data}"], answer_tokens=4, budgets=[64], step_bounds=[1, 4], bound_forcing=[False, True])
    engine = HFEngine(ScriptedLM.of(tokenizer, script), tokenizer)
    evaluate_engines([({}, lambda: engine)], {"spec": "scripted"}, cfg,
                     [TaskData(f"jsonl:{data}", task, problems, source, 1)], tmp_path / "eval", progress=False)
    folder = next((tmp_path / "eval").iterdir())
    samples = {(s["step_bound"], s["bound_forcing"]): s for s in
               (json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines())
               if s["step_bound"] is not None}
    free, forced = samples[(1, False)], samples[(1, True)]
    assert "0 steps left" in free["thinking"] and free["thinking_end"] == T.CLOSED
    assert forced["thinking_end"] == T.FORCED and forced["thinking"].rstrip() == "1 steps left\nbanana split"
    assert forced["thinking_tokens"] < free["thinking_tokens"] and forced["budget"] == 64
    assert samples[(4, True)]["thinking"] == samples[(4, False)]["thinking"]
    assert samples[(4, True)]["thinking_end"] == T.CLOSED and "0 steps left" not in samples[(4, True)]["thinking"]


def test_the_testbed_finds_its_countdowns_zero():
    """The testbed's countdown digit opens each step with no space before it; its sums are " d" tokens."""
    from rzoo.tasks import runsum_controls as RC
    from rzoo.tasks.runsum import TASK

    text = RC.countdown(["3", "7", "1", "0", "1", "5", "2", "6", "8"], 3)  # 3 steps from 3: 3, 2, 1
    assert TASK.countdown_zero(text) is None
    over = RC.countdown(["3", "7", "1", "0", "1", "5", "2", "6", "8"], 2)  # told 2: the third step opens with 0
    assert over[TASK.countdown_zero(over):].startswith("0 8")
    # a 0 that does not open a step is no countdown: a box the model opens in its thinking, a running sum
    assert TASK.countdown_zero("4 5 8 6 331\\boxed{0") is None and TASK.countdown_zero("4 0 0 0 0") is None
    from rzoo.tasks.math500 import TASK as MATH  # s1's wording: "<k> steps left"

    assert MATH.countdown_zero("2 steps left\nx\n1 steps left\ny\n0 steps left\n") == 30
    assert MATH.countdown_zero("10 steps left\n20 steps left") is None
