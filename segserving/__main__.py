"""`python -m segserving`, the same as the installed `segserving` command."""

import sys

from segserving.cli import main

sys.exit(main())
