"""``python -m artistyle``: the same as the ``artistyle`` command."""

import sys

from .cli import main

sys.exit(main())
