"""The `jointdraw` command (CLI): arguments, the terminal's progress bar and tables, exit codes.
It runs the flows (flows/) and the transforms; it holds no rule of its own."""

from __future__ import annotations

import sys

import jointdraw.transforms  # noqa: F401  first: it sets polars' allocator before a command loads polars

FLOW_COMMANDS = ("run", "resume", "results", "redraw", "correct")  # the commands that run a Prefect flow


def main() -> int:
    """The `jointdraw` script (and `python -m jointdraw.cli`). A command that runs a flow starts its temporary
    Prefect server first, before the command's own modules load (polars among them: 0.35 s sooner), since the
    server is what the flow waits for; then the command (cli/commands.py) runs. The collector of reference
    cycles is off while the modules load (`commands._collect_from_here`)."""
    import gc

    gc.disable()  # while the command loads its modules: enabled again once they are (commands.main)
    from jointdraw.cli.prefect_server import start_early

    command, options = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else (None, [])
    if command in FLOW_COMMANDS and not {"-h", "--help"} & set(options):
        start_early()
    from jointdraw.cli.commands import main as run_command

    return run_command()
