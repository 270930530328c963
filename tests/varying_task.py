"""A training task for tests whose reward varies on a random tiny model, so GRPO gets a gradient.

A random model never answers arithmetic right (reward always 0, advantages all 0, no update). This
scorer rewards answers with an even number of characters: arbitrary, but it varies within a group.
"""
from rzoo.tasks.arith import Arith


class Varying(Arith):
    name = "varying"

    def score(self, problem, answer_text: str) -> float:
        return float(len(answer_text) % 2 == 0)


TASK = Varying()
