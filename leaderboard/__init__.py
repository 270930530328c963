"""Static leaderboard (accuracy vs thinking-token curves), imported as `rzoo.leaderboard`. Built by `harness leaderboard` (coming with the leaderboard issue)."""
