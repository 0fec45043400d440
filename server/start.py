"""`python -m server.start`: the server's entry point, with Paddle Serving's launcher flags (see server.cli)."""

from __future__ import annotations

import sys

from server.extra import require_server_extra


def main(argv: list[str] | None = None, prog: str = "python -m server.start") -> int:
    require_server_extra()  # before server.cli imports any of it
    from server.cli import main as run

    return run(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
