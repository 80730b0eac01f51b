"""``python -m jwtward``: the command line."""

import sys

from jwtward.cli import main

sys.exit(main())
