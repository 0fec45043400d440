"""The `segserving` command: one entry point for serving, converting, segmenting, ID photos and benchmarks."""
