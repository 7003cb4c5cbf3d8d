"""Pure logic (no Prefect): the pipeline's rules over frames and files.

Imported before polars (flows/ and cli/ import it first), it sets polars' allocator (settings.POLARS_ALLOCATOR)
through polars' documented variable, _RJEM_MALLOC_CONF, unless the environment sets one: polars reads it as it loads.
"""

import os

from jointdraw.transforms.settings import POLARS_ALLOCATOR

os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR)
