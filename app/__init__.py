"""AI ID photo web application: a Gradio UI over a SegServing server (client SDK) or the in-process model.

python -m app --server 127.0.0.1:9393      # or: python -m app --standalone
"""
