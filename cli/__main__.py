"""`python -m jointdraw.cli …`: the `jointdraw` command."""

import sys

from jointdraw.cli.commands import main

sys.exit(main())
