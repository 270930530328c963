"""Generation with thinking budgets, engine-agnostic: the thinking format and budget (`thinking.py`), the
engine protocol (`engine.py`), s1's budget forcing and budget sweeps over it (`forcing.py`), and the
test-time knob registry (`knobs.py`)."""
