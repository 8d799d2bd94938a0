"""``python -m freshid``: the ``freshid`` command."""

from freshid.cli import main

raise SystemExit(main())
