"""Training: config sections every method's config is made of (`config.py`), the loop every method shares
(`trainer.py`: accelerate, checkpoints, resume, train.jsonl), the RL loop (`rl.py`) with its registered
losses, advantages and aggregations (`losses.py`), rewards (`rewards.py`) and problem samplers
(`samplers.py`), DAPO's filters (`filters.py`), the SFT and DPO loops (`sft.py`, `dpo.py`), RL rollouts on vLLM
(`vllm_rollouts.py`), experiment trackers (`tracking.py`) and the model card every checkpoint carries
(`card.py`)."""
