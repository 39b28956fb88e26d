"""Schedules: cron and interval maths (`timing`), clocks (`clock`), and the SyncJob
scheduler (`scheduler`): pure decisions, and the loop that claims and starts due runs."""
