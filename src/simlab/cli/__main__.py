"""`python -m simlab.cli …` behaves like the `simlab` console script."""

from __future__ import annotations

import sys

from simlab.cli import main

sys.exit(main())
