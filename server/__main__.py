"""``python -m server`` runs the ``neon-mcp`` command line."""

import sys

from .cli import main

sys.exit(main())
