"""Helpers for tests: a real SMTP server process, racing threads, manage.py runs, the clock."""
