"""Benchmarks on the embedded runtime: figures to compare within one run, not pass/fail tests."""
