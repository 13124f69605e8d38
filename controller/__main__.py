"""``python -m controller``: the same entry point as the ``ensemble-operator`` script."""
from controller.cli import main

raise SystemExit(main())
