"""``python -m optimizer`` runs the command line (same as the ``optimizer`` command)."""

import sys

from optimizer.cli import main

sys.exit(main())
