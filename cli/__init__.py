"""The `jointdraw` command (CLI): arguments, the terminal's progress bar and tables, exit codes.
It runs the flows (flows/) and the transforms; it holds no rule of its own."""
