"""``python -m tracker`` is the ``tracker`` command."""

import sys

from tracker.process.cli import main

sys.exit(main())
