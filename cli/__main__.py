"""`python -m jointdraw.cli …`: the `jointdraw` command."""

import sys

from jointdraw.cli import main

sys.exit(main())
