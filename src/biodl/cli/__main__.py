"""``python -m biodl.cli``: the ``biodl`` command."""

from biodl.cli import main

main()
