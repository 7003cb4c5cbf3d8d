"""Errors that reach a person: printed as their message (file, row, rule, what to do), never as a traceback."""

from __future__ import annotations

from jointdraw.transforms.plan import PlanError
from jointdraw.transforms.redraw import NoReplacement
from jointdraw.transforms.seed import SeedError
from jointdraw.transforms.storage.bundle import PublishRefused
from jointdraw.transforms.storage.registry_files import RegistryFileError
from jointdraw.transforms.storage.runlock import PlanLocked
from jointdraw.transforms.storage.warehouse import WarehouseBusy


class StageFailed(Exception):
    """A stage refused its input; the message is for the data engineer (what and where to fix).
    `record`: what the stage found before it refused (written as stage.failed.json, so the stage
    does not count as finished)."""

    def __init__(self, message: str, record: object | None = None) -> None:
        super().__init__(message)
        self.record = record


# the errors a flow run ends with as one message (a Failed state carrying it), without a traceback
USER_ERRORS = (StageFailed, PlanError, SeedError, PlanLocked, WarehouseBusy, PublishRefused, NoReplacement)
# and what the CLI says in one line without a traceback: those, and a file that cannot be read or found
UserFacingError = (*USER_ERRORS, RegistryFileError, FileNotFoundError)
