"""The bundled model repository: one directory per model, in Paddle Serving's layout (see segcore.repository)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
