"""`python -m bulkmail_local.cli`: the `bulkmail` command."""

import sys

from bulkmail_local.cli import main

sys.exit(main())
