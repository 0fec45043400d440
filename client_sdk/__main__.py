"""`python -m client_sdk` entry point."""

import sys

from client_sdk.cli import main

sys.exit(main())
