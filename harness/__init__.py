"""The harness: CLI, configs, run store, model loading, generation with thinking budgets,
evaluation, metrics, and the shared RL loop. Imported as `rzoo.harness`."""
