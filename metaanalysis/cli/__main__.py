"""`python -m metaanalysis.cli` is the `metaanalysis` command."""

import sys

from metaanalysis.cli import main

sys.exit(main())
