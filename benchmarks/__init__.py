"""Benchmarks: each module compares the project against a baseline in the same run (ratios)."""
