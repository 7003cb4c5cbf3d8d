"""The terminal progress follows the run's log lines: a stage starts, says what it is doing, finishes."""

import io
import logging

from rich.console import Console
from rich.progress import Progress

from jointdraw.cli.progress import StageProgress


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prefect.task_runs", level, __file__, 1, message, None, None)


def test_stage_lines_move_the_bar_and_stay_above_it():
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    with Progress(console=console) as progress:
        handler = StageProgress(progress, stages=2)
        handler.emit(_record("ingest started"))
        assert progress.tasks[0].description == "ingest"
        handler.emit(_record("ingest: AMR/objects.csv 14,478 rows (utf-8)"))
        assert "AMR/objects.csv" in progress.tasks[0].description
        handler.emit(_record("ingest done: 20,511 rows read = 20,511 written, 36 files, 0.8 s"))
        handler.emit(_record("validate started"))
        handler.emit(_record("validate: the data contract is not met", logging.ERROR))
        assert progress.tasks[0].completed == 1 and progress.tasks[0].description == "validate"
    printed = console.file.getvalue()
    assert "✓ ingest: 20,511 rows read" in printed and "the data contract is not met" in printed
