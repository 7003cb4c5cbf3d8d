"""Progress of a run in a terminal (issue 7): a bar over the stages, the stage at work and its
latest news, and each finished stage's one line ("rows in, out, quarantined, seconds") kept
above the bar. It listens to the run's own log records, so the flow knows nothing of it.

Used by `jointdraw run` and `jointdraw resume` when the output is a terminal; Prefect's own
console lines are then held back to warnings (every record still reaches the Prefect API).
In a pipe or a log file nothing changes: the log lines are the progress.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

STARTED = re.compile(r"^(\w+) started$")
DONE = re.compile(r"^(\w+) done: (.*)$")
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class StageProgress(logging.Handler):
    """Moves a rich Progress along as stages start and finish."""

    def __init__(self, progress, stages: int) -> None:
        super().__init__(level=logging.INFO)
        self.progress = progress
        self.task = progress.add_task("starting", total=stages)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if m := STARTED.match(message):
            self.progress.update(self.task, description=m.group(1))
        elif m := DONE.match(message):
            self.progress.console.print(f"[green]✓[/green] {m.group(1)}: {m.group(2)}")
            self.progress.advance(self.task)
        elif record.levelno >= logging.WARNING:
            self.progress.console.print(f"[red]{message}[/red]")
        elif not message.startswith(("Finished in state", "Beginning flow run", "Created task run")):
            short = message if len(message) < 90 else message[:87] + "…"
            self.progress.update(
                self.task, description=f"{self.progress.tasks[0].description.split(' — ')[0]} — {short}"
            )


@contextmanager
def stage_progress(stages: int) -> Iterator[None]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    loggers = [logging.getLogger(name) for name in ("", "prefect", *RUN_LOGGERS)]
    prefect_console = list(
        {id(h): h for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)}.values()
    )
    levels = [h.level for h in prefect_console]
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as progress:
        handler = StageProgress(progress, stages)
        for h in prefect_console:
            h.setLevel(logging.WARNING)
        for name in RUN_LOGGERS:
            logging.getLogger(name).addHandler(handler)
        try:
            yield
        finally:
            for name in RUN_LOGGERS:
                logging.getLogger(name).removeHandler(handler)
            for h, level in zip(prefect_console, levels, strict=True):
                h.setLevel(level)
