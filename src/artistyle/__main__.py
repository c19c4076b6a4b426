"""``python -m artistyle``: the same as the ``artistyle`` command."""

import sys

from .cli import entry

sys.exit(entry())
