"""Errors that reach a person: printed as their message (file, row, rule, what to do), never as a traceback."""

from __future__ import annotations

from jointdraw.transforms.plan import PlanError
from jointdraw.transforms.seed import SeedError
from jointdraw.transforms.storage.registry_files import RegistryFileError
from jointdraw.transforms.storage.runlock import PlanLocked
from jointdraw.transforms.storage.warehouse import WarehouseBusy


class StageFailed(Exception):
    """A stage refused its input; the message is for the data engineer (what and where to fix)."""


UserFacingError = (StageFailed, PlanError, RegistryFileError, SeedError, FileNotFoundError, PlanLocked, WarehouseBusy)
