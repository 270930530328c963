"""The harness: CLI, configs, run store, model loading, generation with thinking budgets, evaluation, metrics. Imported as `rzoo.harness`."""
