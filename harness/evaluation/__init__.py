"""Evaluation: the `eval.` section (`config.py`), generating and grading at every test-time setting with
resumable, shardable chunks (`evaluate.py`), sample rows and results files (`results.py`), the metrics
(`metrics.py`), s1's Control / Scaling / Performance (`controls.py`), the papers' protocols (`protocol.py`,
`protocols/`), published numbers (`reported.py`) and the append-only journal a killed evaluation resumes from
(`journal.py`)."""
