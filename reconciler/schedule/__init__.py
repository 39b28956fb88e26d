"""Schedules: cron and interval maths (the scheduler loop arrives with the daemon)."""
