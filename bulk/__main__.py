"""`python -m bulk`, the same as `segserving bulk`."""

import sys

from bulk.job import main

sys.exit(main())
