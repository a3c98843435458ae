"""Allow ``python -m speaker``."""

from speaker.cli import main

raise SystemExit(main())
