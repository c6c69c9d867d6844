"""The arko master: registers slaves, pings them, runs jobs on them."""
