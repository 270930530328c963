"""Step-level search guided by a PRM (harness/generation/search.py) on a tiny model: the scorer steers the kept paths
(a scorer that likes even token ids against the random one), every generated token is accounted (counted at the
engine), the budget caps each path, MCTS backs up one value per simulation, the answer selections by hand, and the
eval config's checks."""
from __future__ import annotations

import pytest

from rzoo.harness.config import ConfigError
from rzoo.harness.generation import engine as E
from rzoo.harness.generation import prm, search, steps
from rzoo.harness.generation import thinking as T
from rzoo.tasks import arith


class EvenScorer:
    """Each step's score: the share of its tokens with an even id (a scorer with a taste, no model)."""

    def score(self, chains):
        return [[sum(t % 2 == 0 for t in s) / len(s) for s in c.steps] for c in chains]

    def flops(self, chains):
        return [float(sum(map(len, c.steps))) for c in chains]


class Counting:
    """An engine wrapper that counts every token any round generated."""

    def __init__(self, engine):
        self.engine, self.generated = engine, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def rounds(self, *args, **kwargs):
        for chunk in self.engine.rounds(*args, **kwargs):
            self.generated += sum(len(o.ids) for o in chunk.outputs)
            yield chunk


class Cfg:
    seed, temperature, top_p, batch_size, answer_tokens, budgets = 0, 1.0, 1.0, 64, 2, [8]
    prm_aggregate, search_select, mcts_exploration = "last", "best", 1.0


class OneTokenSteps:
    """arith with one-token steps (the testbed's rule), so the tiny model's steps are many and short."""
    steps = steps.StepRule(None, 1)

    def grade(self, problem, text):
        return arith.TASK.grade(problem, text)


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    from rzoo.harness import engines, models

    engine = engines.load(models.resolve(str(tiny_model_dir)), "hf", "float32", 0)
    fmt = T.ThinkingFormat.detect(engine.tokenizer)
    problems = arith.generate("test", 3)
    prompts = [T.build_prompt(engine.tokenizer, arith.TASK.messages(p), fmt) for p in problems]
    return engine, fmt, problems, prompts


def _run(setup, scorer, name: str, n: int, m: int, cfg=Cfg, k: int = 1):
    engine, fmt, problems, prompts = setup
    counted = Counting(engine)
    state = search.Search(counted, prompts, problems, OneTokenSteps(), cfg, fmt, scorer, k, False)
    return search.SEARCHES[name](state, n, m), counted


def _even_share(completions) -> float:
    ids = [t for c in completions for t in c.thinking_ids]
    return sum(t % 2 == 0 for t in ids) / len(ids)


@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_the_scorer_steers_the_kept_path(setup, name):
    guided, _ = _run(setup, EvenScorer(), name, 8, 4, k=2)
    control, _ = _run(setup, prm.RandomScorer(0), name, 8, 4, k=2)
    # with 4 candidates per step, an even one is there 15 times in 16: the scorer's paths are nearly all even
    assert _even_share(guided) > 0.85 and _even_share(control) < 0.75


@pytest.mark.parametrize("name,n,m", [("beam", 8, 4), ("dvts", 8, 2), ("mcts", 3, 2)])
def test_every_generated_token_is_accounted(setup, name, n, m):
    out, counted = _run(setup, EvenScorer(), name, n, m)
    assert len(out) == 3 and [c.prompt_index for c in out] == [0, 1, 2]
    assert sum(c.search["generated_tokens"] for c in out) == counted.generated
    for c in out:
        s = c.search
        assert s["generated_tokens"] >= s["thinking_tokens"] + s["answer_tokens"]  # and the closes the model wrote
        assert s["thinking_tokens"] >= s["path_thinking_tokens"] == len(c.thinking_ids) <= Cfg.budgets[0]
        assert s["flops"] == pytest.approx(s["policy_flops"] + s["prm_flops"]) and s["prm_flops"] > 0
        assert c.thinking_end in (T.CLOSED, T.FORCED, T.INCOMPLETE) and s["nodes"] >= s["candidates"] >= 1
        if c.thinking_end == T.FORCED:  # the budget capped the path: budget forcing's close and an answer
            assert len(c.thinking_ids) == Cfg.budgets[0] and c.answer_ids


def test_mcts_backs_up_one_value_per_simulation(setup, monkeypatch):
    roots = []
    real = search.Search.roots
    monkeypatch.setattr(search.Search, "roots", lambda self: roots.extend(real(self)) or roots)
    _run(setup, EvenScorer(), "mcts", 5, 2)
    assert [r.visits for r in roots] == [5, 5, 5]
    for root in roots:  # a node's visits: its own backups, at least those of its children
        stack = [root]
        while stack:
            node = stack.pop()
            assert node.visits >= sum(ch.visits for ch in node.children)
            stack += node.children


def test_the_answer_selections():
    nodes = [search.Node(0, score=s) for s in (0.9, 0.5, 0.6, 0.95)]
    answers = ["7", "3", "3", None]
    assert search.select_best(nodes, answers) is nodes[3]  # the highest value, answered or not
    assert search.select_weighted(nodes, answers) is nodes[2]  # "3": 1.1 against "7": 0.9; its best chain
    assert search.select_weighted(nodes, [None] * 4) is nodes[3]


@pytest.mark.parametrize("tokens,message", [
    (["eval.beam=[4]"], "needs a process reward model"),
    (["eval.prm=random", "eval.beam=[6]", "eval.search_candidates=4"], "multiple of eval.search_candidates"),
    (["eval.prm=random", "eval.dvts=[4]", "eval.prm_aggregate=mean"], "eval.prm_aggregate: unknown"),
    (["eval.prm=random", "eval.mcts=[4]", "eval.search_select=vote"], "eval.search_select: unknown"),
    (["eval.prm=random", "eval.prm_best=[8]", "eval.k=4", "eval.temperature=1"], "eval.k >= 8"),
    (["eval.prm=/no/such/prm-run", "eval.beam=[4]"], "no such folder"),  # not tried on the hub as a repo id
    (["eval.prm=prm-run", "eval.beam=[4]"], "not a local folder, not a hub id"),
])
def test_the_eval_config_checks(tokens, message):
    from rzoo.harness.jobs import resolve

    with pytest.raises(ConfigError, match=message):
        resolve("eval", ["model=testbed", "task=runsum", *tokens])


def test_a_search_setting_states_no_bound_and_has_its_own_generation():
    from rzoo.harness.generation import knobs

    s = {**dict.fromkeys(knobs.names()), "budget": 16, "beam": 4, "knob": "beam"}
    assert knobs.bound_of(s, None) is None and knobs.search_of(s)[1] == 4
    assert knobs.generation_key(s) != knobs.generation_key({**s, "beam": 8})
    assert E.mix_seed(1, 2) != E.mix_seed(2, 1)


def test_compute_optimal_picks_per_bin_on_the_other_fold():
    """Two strategies: "votes" right on easy problems only, "beam" right on hard ones only. Learned on one fold and
    applied to the other, the per-bin pick gets every problem right, more than either strategy alone."""
    from rzoo.harness.evaluation.compute_optimal import compute_optimal, fold_of

    ids = [f"p{i}" for i in range(40)]
    assert {fold_of(p) for p in ids} == {0, 1}
    difficulty = {p: (0.9 if i % 2 else 0.1) for i, p in enumerate(ids)}  # pass@1: odd easy, even hard
    easy = {p: (float(difficulty[p] > 0.5), 1.0, 10.0) for p in ids}
    hard = {p: (float(difficulty[p] < 0.5), 4.0, 50.0) for p in ids}
    out = compute_optimal({"votes@4": easy, "beam@4": hard}, difficulty, bins=2)
    assert out["accuracy"] == 1.0 and out["n_problems"] == 40
    assert out["picked"] == {"beam@4": 20, "votes@4": 20}
    assert out["thinking_tokens_mean"] == pytest.approx((20 * 1.0 + 20 * 4.0) / 40)
    assert out["flops_mean"] == pytest.approx((20 * 10.0 + 20 * 50.0) / 40)
    assert all(f["strategies"] == {"0": "beam@4", "1": "votes@4"} for f in out["choices"].values())
    # equal accuracy: the cheaper strategy wins the tie
    same = compute_optimal({"votes@4": easy, "beam@4": {p: (easy[p][0], 4.0, 50.0) for p in ids}}, difficulty, 2)
    assert same["picked"] == {"votes@4": 40}


def _greedy_eval(runs_root, backend: str) -> list[dict]:
    import json

    from rzoo.harness.cli import main

    assert main(["eval", "model=testbed:early_stop", "task=runsum", "eval.limit=40", "eval.answer_tokens=6",
                 "eval.budgets=[16]", "eval.prm=random", "eval.beam=[4]", "eval.dvts=[4]", "eval.mcts=[2]",
                 "eval.search_candidates=2", "eval.compute_optimal_bins=0", f"eval.backend={backend}",
                 "eval.dtype=float32", "--no-progress"]) == 0
    run = sorted((runs_root / "eval").iterdir())[-1]
    return [json.loads(line) for line in (run / "eval" / "runsum" / "samples.jsonl").read_text().splitlines()]


def test_a_greedy_search_writes_the_greedy_chain(runs_root):
    """At temperature 0 every candidate step is the greedy one, so beam search, DVTS and MCTS all keep the chain
    greedy decoding writes, whatever the scorer: the same thinking and answer, problem by problem; and they pay for
    every candidate (N per step for beam and DVTS)."""
    rows = _greedy_eval(runs_root, "hf")
    plain = {r["problem_id"]: r for r in rows if r["knob"] == "budget"}
    for knob in ("beam", "dvts", "mcts"):
        mine = [r for r in rows if r["knob"] == knob]
        assert len(mine) == 40
        for r in mine:
            p = plain[r["problem_id"]]
            assert (r["thinking"], r["answer"], r["correct"]) == (p["thinking"], p["answer"], p["correct"])
            assert r["path_thinking_tokens"] == p["thinking_tokens"] and r["flops"] > p["flops"]
            if knob == "mcts":  # 2 simulations of 2 candidates, then the rest of the path one step at a time
                assert r["thinking_tokens"] >= p["thinking_tokens"] and r["search_nodes"] >= 4
            else:  # N = 4 candidate steps at every depth: 2 beams x 2, or 2 subtrees x 2
                assert r["thinking_tokens"] == 4 * p["thinking_tokens"]


def test_the_difficulty_bins_never_split_a_tie():
    from rzoo.harness.evaluation.compute_optimal import bin_of, edges

    values = [0.0, 0.0, 0.0, 0.25, 0.5, 0.5, 0.75, 1.0]
    # quartile positions 2, 4, 6 of 8: the value changes at index 3 (0 -> 0.25), 4 (0.25 -> 0.5), 6 (0.5 -> 0.75);
    # the closest change to each position: 3 (for 2), 4, 6
    assert edges(values, 4) == [0.125, 0.375, 0.625]
    assert [bin_of(v, edges(values, 4)) for v in values] == [0, 0, 0, 1, 2, 2, 3, 3]
    assert edges([0.3] * 5, 4) == []  # one value: one bin
    assert edges([0.0] * 6 + [1.0] * 2, 2) == [0.5]  # the only change, far from the median: still the edge
    assert edges(list(reversed(values)), 4) == edges(values, 4)
    # a run of ties at the median: the nearest change wins (the first on a tie), never a cut inside the run; the
    # values are distinct float objects, as pass@1 values computed problem by problem are
    assert edges([x / 4 for x in (0, 0, 2, 2, 2, 2, 4, 4)], 2) == [0.25]
    assert edges([0.0, 1.0, 1.0, 1.0], 2) == [0.5]  # the change at the first index counts
    assert edges([0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0], 2) == [0.75]  # no edge below the first quantile's
    assert edges([0.0, 1.0, 1.0, 2.0, 2.0], 2) == [1.5]  # the median position is 2.5: the change at 3, not at 1
    assert bin_of(0.25, [0.25]) == 1 and bin_of(0.2499, [0.25]) == 0  # a value on an edge is in the bin above


def test_compute_optimal_reads_the_problems_every_strategy_has():
    from rzoo.harness.evaluation.compute_optimal import compute_optimal

    a = {f"p{i}": (1.0, 1.0, None) for i in range(10)}
    b = {f"p{i}": (0.0, 1.0, None) for i in range(9)}  # p9 has no row here
    difficulty = {f"p{i}": 0.5 for i in range(11)}  # p10: a difficulty and no strategy
    assert compute_optimal({"a": a, "b": b}, difficulty, bins=2)["n_problems"] == 9


def test_the_folds_are_a_documented_hash_and_learn_from_each_other():
    """The fold of a problem: the parity of the first 32 bits of its id's SHA-256 (results.json's compute-optimal rows
    stay reproducible across versions). With more problems in fold 1, where "b" wins, than in fold 0, where "a" wins,
    fold 1 still gets fold 0's winner: what it learned on the whole set would be "b"."""
    import hashlib

    from rzoo.harness.evaluation.compute_optimal import compute_optimal, fold_of

    ids = [f"q{i}" for i in range(200)]
    assert all(fold_of(p) == int.from_bytes(hashlib.sha256(p.encode()).digest()[:4], "big") % 2 for p in ids)
    zero = [p for p in ids if fold_of(p) == 0][:10]
    one = [p for p in ids if fold_of(p) == 1][:20]
    difficulty = dict.fromkeys(zero + one, 0.5)
    a = {p: (float(p in zero), 1.0, None) for p in zero + one}
    b = {p: (float(p in one), 1.0, None) for p in zero + one}
    out = compute_optimal({"a": a, "b": b}, difficulty, bins=2)
    assert out["accuracy"] == 0.0 and out["picked"] == {"a": 20, "b": 10}
    assert [out["choices"][f]["learned_on_other_fold"] for f in ("fold0", "fold1")] == [True, True]
    only = compute_optimal({"a": a, "b": b}, {p: 0.5 for p in zero}, bins=2)  # fold 1 empty: fold 0 learns on itself
    assert [only["choices"][f]["learned_on_other_fold"] for f in ("fold0", "fold1")] == [False, True]
    assert only["accuracy"] == 1.0 and only["picked"] == {"a": 10}


def test_each_fold_is_picked_by_what_the_other_fold_learned():
    """Strategy "a" wins on fold 0's problems and "b" on fold 1's, in one difficulty bin: each fold gets the other
    fold's winner, so the compute-optimal accuracy is 0 (a per-problem oracle would score 1)."""
    from rzoo.harness.evaluation.compute_optimal import compute_optimal, fold_of

    ids = [f"q{i}" for i in range(30)]
    difficulty = dict.fromkeys(ids, 0.5)
    a = {p: (float(fold_of(p) == 0), 1.0, None) for p in ids}
    b = {p: (float(fold_of(p) == 1), 1.0, None) for p in ids}
    out = compute_optimal({"a": a, "b": b}, difficulty, bins=4)
    assert out["accuracy"] == 0.0 and "flops_mean" not in out
    assert out["choices"]["fold0"]["strategies"] == {"0": "b"} and out["choices"]["fold1"]["strategies"] == {"0": "a"}
    assert out["picked"] == {"a": sum(fold_of(p) == 1 for p in ids), "b": sum(fold_of(p) == 0 for p in ids)}
