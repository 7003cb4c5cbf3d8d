"""The Prefect flows and tasks: thin wiring around transforms/. The transforms package is imported first, before any
flow module loads polars, so a flow run started by a worker gets the allocator's setting as the command does
(transforms/__init__.py)."""

import jointdraw.transforms  # noqa: F401
