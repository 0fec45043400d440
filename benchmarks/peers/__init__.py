"""Peer servers the benchmarks compare SegServing against, running the same segcore model code.

naive:         one Flask process, one predictor behind a lock, base64 JSON (the tutorial pattern)
litserve_app:  the same model code behind LitServe (inference worker processes, uvicorn API servers)
"""
