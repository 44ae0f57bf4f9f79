"""Allow `python -m gem_dagster ...`."""

import sys

from gem_dagster.cli import main

sys.exit(main())
