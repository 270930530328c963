"""Search over reasoning steps at test time, guided by a process reward model (`prm.py`), on the engine protocol
(`engine.py`: transformers or vLLM, whose prefix cache shares the tree's prefixes).

    harness eval model=testbed:early_stop task=runsum eval.prm=<prm run> eval.beam=[4,16] eval.dvts=[4,16]

A node is a partial chain: the policy's thinking tokens so far, cut into steps by the task's rule
(`Task.steps`, `steps.py`). Expanding a node samples candidate next steps in one engine round for all nodes of all
problems at once; a candidate that closes its thinking block (or reaches the thinking budget, where it is
force-closed as budget forcing does) gets its answer at once and is *finished*; every candidate is scored by the
PRM (its step scores aggregated, `prm.AGGREGATES`, eval.prm_aggregate). The searches, after Snell et al. (2024) and
Hugging Face's search-and-learn (Beeching et al. 2024), each given N (the knob's value) and M candidates per step
(eval.search_candidates):

- `beam`: step-level beam search. The root gets N candidates; the N/M best distinct unfinished candidates are kept
  (equal chains are one, as search-and-learn filters duplicates) and the next step's N candidates are spread over
  them (M each when N/M are distinct); finished ones are set aside, until none is left unfinished.
- `dvts`: diverse verifier tree search: N/M independent subtrees, each extended greedily: M candidates per step, of
  which the PRM's best is kept (N per step in all); a subtree ends when its kept step is finished.
- `mcts`: Monte-Carlo tree search over steps: N simulations, each descending by UCT (Q: the mean backed-up PRM
  value, or the node's own score before a visit; exploration eval.mcts_exploration) to a leaf, expanding it with M
  candidate steps and backing up the best candidate's score; a chosen finished node backs up its own score. Then
  the principal line (the most visited child at each level) is completed greedily by the PRM (M candidates per
  step, the best kept) and joins the finished chains the simulations found.

The answer is picked among the finished chains by eval.search_select (`SELECTIONS`): `best` (the highest
aggregated score) or `weighted` (the answer whose chains' scores sum highest; its best chain). Accounting, per
search: the thinking tokens of every candidate (not only the kept path), the answers', and the FLOPs of both
(each token once, prefixes cached, as `flops.py` counts a sample) plus every PRM forward (`Scorer.flops`); the
sample row keeps them with the tree's size (`search` on the completion, read by `results.grade_rows`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..registry import Registry
from . import thinking as T
from .engine import EOS, LENGTH, STOP, Sampling, mix_seed, run_round
from .forcing import Completion, _delimiter_start
from .prm import aggregate, chain


@dataclass(eq=False)
class Node:
    search: int  # which search (problem x sample) it belongs to
    thinking: list[int] = field(default_factory=list)
    steps: list[list[int]] = field(default_factory=list)
    end: str | None = None  # None while unfinished; else T.CLOSED / T.FORCED / T.INCOMPLETE (the turn ended)
    close: list[int] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)
    answer_truncated: bool = False
    scores: list[float] = field(default_factory=list)
    score: float = 0.0
    children: list["Node"] = field(default_factory=list)  # MCTS
    visits: int = 0
    value: float = 0.0

    @property
    def done(self) -> bool:
        return self.end is not None


SELECTIONS = Registry("search answer selection")


@SELECTIONS.register("best", "the finished chain with the highest aggregated PRM score")
def select_best(nodes: list[Node], answers: list[str | None]) -> Node:
    return max(nodes, key=lambda n: n.score)


@SELECTIONS.register("weighted", "the answer whose finished chains' scores sum highest (weighted best-of-N)")
def select_weighted(nodes: list[Node], answers: list[str | None]) -> Node:
    totals: dict[str, float] = {}
    for n, a in zip(nodes, answers):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + n.score
    if not totals:
        return select_best(nodes, answers)
    top = max(totals, key=totals.get)  # first seen wins a tie (dict order)
    return max((n for n, a in zip(nodes, answers) if a == top), key=lambda n: n.score)


class Search:
    """The state every search shares: the engine, the PRM, each search's prompt and its spending."""

    def __init__(self, engine, prompts: list[str], problems: list, task, cfg, fmt, scorer, k: int, progress: bool):
        from ..models import flops

        self.engine, self.tok, self.task, self.cfg, self.fmt, self.scorer = engine, engine.tokenizer, task, cfg, fmt, scorer
        self.problems, self.k, self.progress = problems, k, progress
        self.rule = task.steps
        self.budget = max(cfg.budgets)
        self.prompt_ids = [self.tok.encode(p, add_special_tokens=False) for p in prompts]
        self.forced = self.tok.encode(fmt.forced_close, add_special_tokens=False)
        self.shape = engine.flops_shape
        self.cost = lambda n: flops.sample_flops(self.shape, n, 0)  # noqa: E731 - FLOPs of a context of n tokens
        n = len(problems) * k
        self.spent = [{"thinking_tokens": 0, "answer_tokens": 0, "generated_tokens": 0, "flops": 0.0, "prm_flops": 0.0,
                       "nodes": 0, "finished": 0} for _ in range(n)]
        for s in range(n):
            self.spent[s]["flops"] += self.cost(len(self.prompt_ids[s // k]))  # the prompt, read once

    def roots(self) -> list[Node]:
        return [Node(s) for s in range(len(self.problems) * self.k)]

    def _prefix(self, node: Node) -> list[int]:
        return self.prompt_ids[node.search // self.k] + node.thinking

    def _seed(self, node: Node, tag: str, c: int) -> int:
        problem = self.problems[node.search // self.k]
        return mix_seed(self.cfg.seed, problem.id, node.search % self.k, tag, len(node.thinking),
                        mix_seed(*node.thinking) if node.thinking else 0, c)

    def expand(self, requests: list[tuple[Node, int]], tag: str) -> list[list[Node]]:
        """Each (node, m): m candidate next steps of the node, sampled in one round for all; finished candidates
        answered; all scored. Returns each request's candidates."""
        rule, fmt = self.rule, self.fmt
        rows = [(node, c) for node, m in requests for c in range(m)]
        if not rows:
            return [[] for _ in requests]
        sampling = Sampling(temperature=self.cfg.temperature, top_p=self.cfg.top_p, batch_size=self.cfg.batch_size,
                            seeds=tuple(self._seed(n, tag, c) for n, c in rows))
        limits = [min(rule.max_tokens, self.budget - len(n.thinking)) for n, _ in rows]
        outs = run_round(self.engine, [self._prefix(n) for n, _ in rows], limits, rule.stop or fmt.close, sampling,
                         f"search {tag}", False)
        children = []
        for (parent, _), out in zip(rows, outs):
            child = Node(parent.search, list(parent.thinking), [list(s) for s in parent.steps])
            new = list(out.ids)
            if out.reason == EOS:  # the turn ended inside the block: finished, with no answer
                kept, child.end = new[:-1], T.INCOMPLETE
            elif out.reason == STOP and fmt.close in self.tok.decode(new):
                cut = _delimiter_start(self.tok, new, fmt.close)
                kept, child.close, child.end = new[:cut], new[cut:], T.CLOSED
            else:
                kept = new
            child.thinking += kept
            if kept:
                child.steps.append(kept)
            if child.end is None and len(child.thinking) >= self.budget:  # the budget is spent: budget forcing
                child.close, child.end = list(self.forced), T.FORCED
            spent = self.spent[child.search]
            context = len(self._prefix(parent))
            spent["thinking_tokens"] += len(kept)
            spent["generated_tokens"] += len(new)
            spent["flops"] += self.cost(context + len(new)) - self.cost(context)
            spent["nodes"] += 1
            children.append(child)
        self._answer([c for c in children if c.end in (T.CLOSED, T.FORCED)])
        self._score(children)
        out, i = [], 0
        for _, m in requests:
            out.append(children[i:i + m])
            i += m
        return out

    def _answer(self, nodes: list[Node]) -> None:
        if not nodes:
            return
        sampling = Sampling(temperature=self.cfg.temperature, top_p=self.cfg.top_p, batch_size=self.cfg.batch_size,
                            seeds=tuple(self._seed(n, "answer", 0) for n in nodes))
        prefixes = [self._prefix(n) + n.close for n in nodes]
        outs = run_round(self.engine, prefixes, [self.cfg.answer_tokens] * len(nodes), None, sampling, "answers", False)
        for node, prefix, out in zip(nodes, prefixes, outs):
            node.answer, node.answer_truncated = list(out.ids), out.reason == LENGTH
            spent = self.spent[node.search]
            spent["answer_tokens"] += len(out.ids)
            spent["generated_tokens"] += len(out.ids)
            start = len(prefix) - (len(node.close) if node.end == T.FORCED else 0)  # an injected close is read too
            spent["flops"] += self.cost(len(prefix) + len(out.ids)) - self.cost(start)
            spent["finished"] += 1

    def _score(self, nodes: list[Node]) -> None:
        chains = [chain(self.problems[n.search // self.k].question, self.prompt_ids[n.search // self.k],
                        n.steps + ([n.close + n.answer] if n.end in (T.CLOSED, T.FORCED) else [])) for n in nodes]
        for node, scores, spent in zip(nodes, self.scorer.score(chains), self.scorer.flops(chains)):
            node.scores = scores
            node.score = aggregate(scores, self.cfg.prm_aggregate)
            self.spent[node.search]["prm_flops"] += spent

    def finish(self, nodes: list[Node], m: int, tag: str) -> list[Node]:
        """Complete unfinished nodes greedily by the PRM: M candidate steps each time, the best kept."""
        out = list(nodes)
        step = 0
        while True:
            todo = [i for i, n in enumerate(out) if not n.done]
            if not todo:
                return out
            for i, kids in zip(todo, self.expand([(out[i], m) for i in todo], f"{tag}-finish{step}")):
                out[i] = max(kids, key=lambda c: c.score)
            step += 1

    def completion(self, finished: list[Node], search: int) -> Completion:
        """The search's answer among its finished chains (eval.search_select), as a completion with its spending."""
        problem = self.problems[search // self.k]
        answers = [self.task.grade(problem, self.tok.decode(n.answer, skip_special_tokens=True)).extracted
                   if n.end in (T.CLOSED, T.FORCED) else None for n in finished]
        node = SELECTIONS.get(self.cfg.search_select)(finished, answers)
        c = Completion(search // self.k, search % self.k, len(self.prompt_ids[search // self.k]))
        c.thinking_ids, c.close_ids, c.answer_ids = list(node.thinking), list(node.close), list(node.answer)
        c._extend(node.thinking, True)
        c._extend(node.close, node.end == T.CLOSED)
        c._extend(node.answer, True)
        c.thinking_end, c.answer_truncated = node.end, node.answer_truncated
        c.thinking_text = self.tok.decode(c.thinking_ids, skip_special_tokens=True)
        c.answer_text = self.tok.decode(c.answer_ids, skip_special_tokens=True)
        spent = self.spent[search]
        c.search = {**spent, "flops": spent["flops"] + spent["prm_flops"], "policy_flops": spent["flops"],
                    "path_thinking_tokens": len(node.thinking), "prm_score": node.score, "candidates": len(finished)}
        return c


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None if progress else True, leave=False)


def _spread(n: int, parts: int) -> list[int]:
    """n candidates over `parts` nodes, as evenly as the division allows (the first ones get the remainder)."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def beam(s: Search, n: int, m: int) -> list[Completion]:
    """Step-level beam search: N candidates per step over the N/M best distinct unfinished chains (see the module
    docstring); finished candidates are set aside until no chain is left unfinished."""
    keep = n // m
    frontier = {node.search: [node] for node in s.roots()}
    finished: dict[int, list[Node]] = {i: [] for i in frontier}
    depth = 0
    with _bar(s.budget, f"beam N={n} M={m}", s.progress) as bar:
        while any(frontier.values()):
            requests = [(node, c) for nodes in frontier.values() for node, c in zip(nodes, _spread(n, len(nodes)))]
            kids = s.expand(requests, f"beam{n}x{m}-{depth}")
            pool: dict[int, list[Node]] = {i: [] for i in frontier}
            for (node, _), candidates in zip(requests, kids):
                pool[node.search] += candidates
            for i, candidates in pool.items():
                finished[i] += [c for c in candidates if c.done]
                distinct: dict[tuple, Node] = {}  # equal chains are one beam (search-and-learn filters duplicates)
                for c in sorted((c for c in candidates if not c.done), key=lambda c: -c.score):
                    distinct.setdefault(tuple(c.thinking), c)
                frontier[i] = list(distinct.values())[:keep]
            depth += 1
            bar.update(1)
    return [s.completion(finished[i], i) for i in sorted(finished)]


def dvts(s: Search, n: int, m: int) -> list[Completion]:
    """Diverse verifier tree search: N/M subtrees, each keeping its best of M candidates per step."""
    subtrees = [(i, t) for i in range(len(s.problems) * s.k) for t in range(n // m)]
    heads = {key: Node(key[0]) for key in subtrees}
    depth = 0
    with _bar(s.budget, f"dvts N={n} M={m}", s.progress) as bar:
        while True:
            todo = [key for key in subtrees if not heads[key].done]
            if not todo:
                break
            kids = s.expand([(heads[key], m) for key in todo], f"dvts{n}x{m}-{depth}")
            for key, candidates in zip(todo, kids):
                heads[key] = max(candidates, key=lambda c: c.score)
            depth += 1
            bar.update(1)
    return [s.completion([heads[(i, t)] for t in range(n // m)], i) for i in range(len(s.problems) * s.k)]


def _uct(parent: Node, child: Node, c: float) -> float:
    q = child.value / child.visits if child.visits else child.score
    return q + c * math.sqrt(math.log(parent.visits + 1) / (child.visits + 1))


def mcts(s: Search, n: int, m: int) -> list[Completion]:
    """Monte-Carlo tree search over steps: N simulations of select (UCT), expand (M steps), back up the PRM value."""
    roots = s.roots()
    for sim in range(n):
        paths = []
        for root in roots:
            path = [root]
            while path[-1].children and not path[-1].done:
                parent = path[-1]
                path.append(max(parent.children, key=lambda ch: _uct(parent, ch, s.cfg.mcts_exploration)))
            paths.append(path)
        leaves = [p for p in paths if not p[-1].done]
        kids = s.expand([(p[-1], m) for p in leaves], f"mcts{n}x{m}-{sim}")
        for path, candidates in zip(leaves, kids):
            path[-1].children = candidates
        for path in paths:
            value = max(c.score for c in path[-1].children) if path[-1].children else path[-1].score
            for node in path:
                node.visits += 1
                node.value += value
    # the principal line (the most visited child each time, from the root) completed greedily by the PRM (M candidates
    # per step, the best kept) joins the finished chains the simulations found; the answer is picked among them
    found, lines = [], []
    for root in roots:
        nodes, stack = [], [root]
        while stack:
            node = stack.pop()
            nodes.append(node)
            stack += node.children
        found.append([x for x in nodes if x.done])
        node = root
        while node.children:
            node = max(node.children, key=lambda ch: (ch.visits, ch.score))
        lines.append(node)
    todo = [i for i, leaf in enumerate(lines) if not leaf.done]
    for i, leaf in zip(todo, s.finish([lines[i] for i in todo], m, f"mcts{n}x{m}")):
        found[i].append(leaf)
    return [s.completion(done, i) for i, done in enumerate(found)]


SEARCHES = {"beam": beam, "dvts": dvts, "mcts": mcts}


def generate(name: str, engine, prompts: list[str], value: int, cfg, problems: list, k: int, fmt, progress: bool,
             task) -> list[Completion]:
    """The `beam` / `dvts` / `mcts` knobs' generation: `value` is N, eval.search_candidates M."""
    from .prm import load_scorer

    if not cfg.prm:
        raise ValueError(f"eval.{name} needs a process reward model: eval.prm=<method=prm run, PRM folder, hub id, "
                         "or random>")
    scorer = load_scorer(cfg.prm, engine.tokenizer, cfg.prm_format, cfg.dtype, cfg.seed)
    state = Search(engine, prompts, problems, task, cfg, fmt, scorer, k, progress)
    return SEARCHES[name](state, int(value), cfg.search_candidates)
