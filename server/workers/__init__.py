"""Inference worker processes, their pools and dynamic batching."""
