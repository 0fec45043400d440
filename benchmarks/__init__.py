"""Benchmarks and evaluation: load generation, in-process limits, peers, accuracy."""
