"""``python -m trainlab.cli``."""

from trainlab.cli import main

raise SystemExit(main())
