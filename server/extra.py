"""The [server] extra, checked before anything imports it: an SDK-only install gets one line, not a traceback."""

from __future__ import annotations

import importlib.util
import sys

# import name -> distribution, for every package of the [server] extra (tests/test_declared_imports.py keeps the
# two in step with pyproject.toml)
SERVER_MODULES = {
    "cv2": "opencv-python-headless",
    "fastapi": "fastapi",
    "httptools": "httptools",
    "multipart": "python-multipart",
    "onnxruntime": "onnxruntime",
    "orjson": "orjson",
    "prometheus_client": "prometheus-client",
    "pydantic": "pydantic",
    "starlette": "starlette",
    "swagger_ui_bundle": "swagger-ui-bundle",
    "uvicorn": "uvicorn",
    "uvloop": "uvloop",
    "yaml": "PyYAML",
}
INSTALL_HINT = "pip install 'segserving[server]' (from a checkout: pip install -e '.[server]')"


def missing_server_packages() -> list[str]:
    """Distributions of the [server] extra whose modules cannot be found."""
    return sorted(dist for module, dist in SERVER_MODULES.items() if importlib.util.find_spec(module) is None)


def require_server_extra() -> None:
    """Exit 1 with one line naming the extra when any of its packages is missing."""
    missing = missing_server_packages()
    if missing:
        print(f"error: the server needs the [server] extra ({', '.join(missing)} not installed): {INSTALL_HINT}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(1)
