"""Errors that reach a person: printed as their message (file, row, rule, what to do), never as a traceback."""

from __future__ import annotations

from flows.ingest import StageFailed
from transforms.plan import PlanError
from transforms.read_registry import RegistryFileError

UserFacingError = (StageFailed, PlanError, RegistryFileError, FileNotFoundError)
