"""Shared CLI plumbing: error-to-exit-code mapping, JSON output, progress on stderr."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from ..errors import EdgefitError


class EdgefitGroup(click.Group):
    """A click group that turns edgefit's domain errors into one line on stderr and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgefitError as e:
            click.echo(f"edgefit: error: {e}", err=True)
            ctx.exit(e.exit_code)


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def stdout_console():
    """Rich console for tables; piped output (CI logs, files) gets a wide page instead of 80 columns."""
    import os

    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=160 if wide else None)


@contextmanager
def zoo_progress():
    """A progress callback for measuring the zoo (only shown when it is not cached)."""
    state = {}

    def callback(i: int, total: int, name: str) -> None:
        if not sys.stderr.isatty():  # a log gets one line, not a redrawn bar
            if i == 0:
                print(f"edgefit: measuring {total} zoo variants (first run for these classes; cached afterwards)",
                      file=sys.stderr, flush=True)
            return
        if "progress" not in state:
            from rich.progress import Progress

            p = Progress(console=stderr_console(), transient=True, redirect_stdout=False, redirect_stderr=False)
            p.start()
            state["progress"] = p
            state["task"] = p.add_task("measuring the zoo (first run; cached afterwards)", total=total)
        state["progress"].update(state["task"], completed=i + 1, description=f"measuring {name}")

    try:
        yield callback
    finally:
        if "progress" in state:
            state["progress"].stop()


def fmt_m(n: float, digits: int = 1) -> str:
    return f"{n / 1e6:.{digits}f}"


