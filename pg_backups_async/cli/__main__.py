"""`python -m pg_backups_async.cli`: the same as `pg-backups`."""

import sys

from . import main

sys.exit(main())
