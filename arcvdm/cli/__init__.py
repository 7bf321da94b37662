"""Command-line entry point: `arcvdm --help`. Each command group lives in its own module."""

import sys

from rich.console import Console

from arcvdm.cli.app import app
from arcvdm.errors import ArcvdmError

# Importing the modules registers their commands on `app`.
from arcvdm.cli import backbone, codec, data, mini, report, run, score, vision  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except ArcvdmError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
