"""Graders, one scorer per answer kind shared by evaluation and the RL reward: math answers read with
math-verify after this project decides which span is the answer (`verdict.py`, spans in `answers.py`), a
sympy second opinion (`sympy_check.py`), multiple-choice letters (`choice.py`), a time limit that works in
any thread (`timelimit.py`), and `harness grade` for other tools' answers (`regrade.py`). Test cases are
data files in `cases/`."""
