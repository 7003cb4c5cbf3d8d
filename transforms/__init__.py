"""The pure logic (the rules, the SQL, the files). Importing it first gives polars' allocator the setting of
`settings.POLARS_ALLOCATOR`, which it reads once, when polars is loaded: every entry point (the command, a
deployment's flow run, a worker) imports this package before polars."""

import os

from jointdraw.transforms.settings import POLARS_ALLOCATOR

os.environ.setdefault(*POLARS_ALLOCATOR)
