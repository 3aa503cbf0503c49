"""Timing and quality harnesses that print tables (``python -m benchmarks.speed``); never part of the tests."""
