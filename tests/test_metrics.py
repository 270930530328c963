from __future__ import annotations

import itertools
import random
from math import comb

import pytest

from rzoo.harness.evaluation import metrics


def _brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_brute_force(n):
    rng = random.Random(n)
    for _ in range(10):
        outcomes = [rng.random() < 0.4 for _ in range(n)]
        for k in range(1, n + 1):
            expected = _brute_pass_at_k(outcomes, k)
            assert metrics.pass_at_k(n, sum(outcomes), k) == pytest.approx(expected)
            assert metrics.pass_at_k(n, sum(outcomes), k) == pytest.approx(
                1 - comb(n - sum(outcomes), k) / comb(n, k))
    with pytest.raises(ValueError):
        metrics.pass_at_k(3, 1, 4)


def test_bootstrap_is_reproducible_and_covers_the_mean():
    values = [float(random.Random(i).random() < 0.3) for i in range(200)]
    a = metrics.bootstrap_ci(values, seed=7)
    assert a == metrics.bootstrap_ci(values, seed=7)
    assert a != metrics.bootstrap_ci(values, seed=8)
    mean = sum(values) / len(values)
    assert a[0] < mean < a[1]
    assert 0.05 < a[1] - a[0] < 0.2  # ~ 2 * 1.96 * sqrt(p(1-p)/n) = 0.127


def test_bootstrap_draws_what_randrange_draws():
    """The percentile bootstrap by its definition, resampling with `randrange`: the same interval to the bit (every
    results.json written before the faster draw keeps its intervals)."""
    values = [random.Random(i).random() for i in range(137)]
    rng = random.Random(5)
    means = []
    for _ in range(1000):
        total = 0.0
        for _ in range(137):  # added left to right (Python 3.12's `sum` compensates; the intervals predate it)
            total += values[rng.randrange(137)]
        means.append(total / 137)
    means.sort()
    assert metrics.bootstrap_ci(values, seed=5) == (means[25], means[975])
    other = [1.0 - v for v in values]  # the same draws serve other values of the same length
    assert metrics.bootstrap_ci(other, seed=5) != metrics.bootstrap_ci(values, seed=5)


def test_majority_vote():
    assert metrics.majority_correct(["4", "5", "4"], [True, False, True])
    assert not metrics.majority_correct(["5", "5", "4"], [False, False, True])
    assert not metrics.majority_correct([None, None], [False, False])
    assert metrics.majority_correct([None, "3"], [False, True])


def _rows(correct_by_problem):
    rows = []
    for pid, outcomes in correct_by_problem.items():
        for j, ok in enumerate(outcomes):
            rows.append({"problem_id": pid, "sample_index": j, "correct": ok, "extracted": "1" if ok else str(j + 2),
                         "thinking_tokens": 10 * (j + 1), "answer_tokens": 3, "thinking_end": "closed",
                         "answer_truncated": False, "waits_used": 0})
    return rows


def test_summarize():
    rows = _rows({"a": [True, False, False, False], "b": [True, True, True, False]})
    m = metrics.summarize(rows, k=4, seed=0)
    assert m["accuracy"] == pytest.approx((0.25 + 0.75) / 2)
    assert m["pass@1"] == pytest.approx(m["accuracy"])
    assert m["pass@4"] == 1.0 and m["pass@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["maj@4"] == 1.0  # b: "1" x3 wins; a: four different answers, the tie goes to the first ("1")
    assert m["thinking_tokens_median"] == 25 and m["thinking_tokens_p90"] == pytest.approx(40)
    assert m["accuracy_std"] > 0 and m["n_problems"] == 2


def test_flops_formula_against_direct_sum(tokenizer):
    from conftest import build_tiny_model
    from rzoo.harness.models import flops

    model = build_tiny_model(tokenizer)
    shape = flops.shape_of(model)
    cfg = model.config
    # tied head: every parameter is used in a matmul once (the embedding as the output head)
    assert shape.matmul_params == sum(p.numel() for p in model.parameters())
    assert (shape.n_layer, shape.d_model) == (cfg.num_hidden_layers, cfg.hidden_size)
    P, G = 11, 5
    direct = sum(2 * shape.matmul_params + 2 * shape.n_layer * t * shape.d_model for t in range(1, P + G + 1))
    assert flops.sample_flops(shape, P, G) == direct
    assert flops.sample_flops(shape, P, G + 1) > flops.sample_flops(shape, P, G)


def test_results_count_the_graders_disagreements(tmp_path, tokenizer):
    """An evaluation whose answers split math-verify and the sympy second opinion (both ways) counts them in
    results.json and names their samples (docs/grading.md); the verdict is math-verify's."""
    import json

    from scripted import ScriptedLM

    from rzoo import tasks
    from rzoo.harness.data import TaskData
    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.evaluation.config import eval_config_class
    from rzoo.harness.evaluation.evaluate import evaluate_engines
    from rzoo.harness.generation import thinking as T

    rows = [("q1", "Order the roots.", "4,3", "\\boxed{3,4}"),  # math-verify: right, sympy: wrong
            ("q2", "Give the pair.", "[1,2]", "\\boxed{(1,2)}"),  # math-verify: wrong, sympy: right
            ("q3", "Half of one?", "\\frac{1}{2}", "\\boxed{0.5}"),  # both right
            ("q4", "Two apples?", "3", "\\boxed{4}")]  # both wrong
    data = tmp_path / "qs.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a, _ in rows))
    task = tasks.get(f"jsonl:{data}")
    problems, source = task.load(None)
    reply = {q: f"\n{T.THINK_CLOSE}\n\n{said}" for _, q, _, said in rows}

    def script(ids):
        text = tokenizer.decode(ids)
        prompt, _, written = text.rpartition(T.THINK_OPEN)
        said = [r for q, r in reply.items() if q in prompt]
        if not said:
            return None  # a prefill position (the prompt without its opening): nobody reads it
        target = tokenizer.encode(said[0], add_special_tokens=False)
        done = len(tokenizer.encode(written, add_special_tokens=False)) if written else 0
        return target[done] if done < len(target) else tokenizer.eos_token_id

    engine = HFEngine(ScriptedLM.of(tokenizer, script), tokenizer)
    cfg = eval_config_class()(task=[f"jsonl:{data}"], budgets=[16], answer_tokens=24)
    summary = evaluate_engines([({}, lambda: engine)], {"spec": "scripted"}, cfg,
                               [TaskData(f"jsonl:{data}", task, problems, source, len(problems))], tmp_path / "eval",
                               progress=False)
    (result,) = summary[f"jsonl:{data}"]
    assert result["accuracy"] == 0.5  # q1 and q3, by math-verify
    assert result["grader_disagreements"] == 2
    assert sorted(result["grader_disagreement_ids"]) == ["q1#0", "q2#0"]
