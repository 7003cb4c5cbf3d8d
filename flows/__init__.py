"""Prefect flows and tasks: thin wiring of jointdraw.transforms."""

import jointdraw.transforms  # noqa: F401  first: it sets polars' allocator before a flow's module loads polars
