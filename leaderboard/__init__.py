"""Static leaderboard (accuracy vs thinking-token curves), imported as `rzoo.leaderboard`.

Empty until the leaderboard issue lands `harness leaderboard`."""
