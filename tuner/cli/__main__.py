"""`python -m tuner.cli`: the `gantune` command."""

import sys

from tuner.cli import main

sys.exit(main())
