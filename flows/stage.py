"""The stage runner: what every stage does around its own work (issue 20).

    record = run_stage_step("merge", folder, lambda: run_merge(ctx), run_id)

A step reads its inputs, calls pure functions, writes its files and returns its typed record
(transforms/stage_records.py). The runner owns the rest, the same for every stage of both flows:
a SIGTERM some library swallowed ends the run here (flows/termination.py); the "started" and
"done" log lines the progress bar follows (cli/progress.py); the stage folder; the seconds;
stage.json (written last: a stage without it has not finished, and a rerun starts there); and the
stage's Prefect artifacts. A stage that refuses its input leaves what it found in stage.failed.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.termination import stop_if_terminated
from jointdraw.transforms.stage_records import Artifact, StageRecord
from jointdraw.transforms.storage.runfolder import FAILED_RECORD, STAGE_RECORD, write_json

R = TypeVar("R", bound=StageRecord)


def run_stage_step(stage: str, folder: Path, step: Callable[[], R], run_id: str) -> R:
    """Runs one stage's `step` in `folder`; returns its record, with the seconds it took."""
    stop_if_terminated()
    logger = get_run_logger()
    logger.info("%s started", stage)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILED_RECORD).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        record = step()
    except StageFailed as e:
        if isinstance(e.record, StageRecord):
            write_json(e.record.model_dump(mode="json"), folder / FAILED_RECORD)
        raise
    record = record.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})
    write_json(record.model_dump(mode="json"), folder / STAGE_RECORD)
    logger.info("%s done: %s; %.1f s", stage, record.line(), record.seconds)
    for artifact in record.artifacts(run_id):
        _create(artifact)
    return record


def _create(artifact: Artifact) -> None:
    if artifact.kind == "table":
        create_table_artifact(key=artifact.key, table=artifact.table, description=artifact.description)
    elif artifact.kind == "markdown":
        create_markdown_artifact(key=artifact.key, markdown=artifact.markdown, description=artifact.description)
    else:
        create_link_artifact(
            key=artifact.key, link=artifact.link, link_text=artifact.link_text, description=artifact.description
        )
