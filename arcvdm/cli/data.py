"""Data commands: `arcvdm datasets list`, `arcvdm datasets download NAME [--archive ZIP]`, `arcvdm show TASK`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from arcvdm.cli.app import app, datasets_app

if TYPE_CHECKING:
    from arcvdm.tasks import Grid

DataDir = typer.Option(None, "--data-dir", help="Folder holding the datasets (before $ARCVDM_DATA and the user cache).")


@datasets_app.command("list")
def list_datasets(data_dir: Optional[str] = DataDir) -> None:
    """Each dataset, where it resolves and its task count."""
    from arcvdm.datasets import DATASETS, count_tasks, resolve

    table = Table("name", "source", "tasks")
    table.add_column("where", overflow="fold")  # a path must never be cut short
    for name in DATASETS.names():
        dataset = DATASETS.get(name)
        folder = resolve(name, data_dir)
        source = f"{dataset.source.repo}@{dataset.source.commit[:7]}"
        table.add_row(name, source, str(count_tasks(folder)) if folder else "-", str(folder) if folder else "[dim]not downloaded[/dim]")
    Console().print(table)


@datasets_app.command("download")
def download_dataset(
    name: str = typer.Argument(..., help="A dataset name (its whole repository is fetched), e.g. arc-agi-1/evaluation."),
    archive: Optional[str] = typer.Option(None, "--archive", help="A local zip or URL instead of the GitHub archive at the pinned commit."),
) -> None:
    """Fetch a dataset from its upstream repository at the pinned commit, verify its checksum, unpack into the cache."""
    from arcvdm.datasets import count_tasks, download

    for folder in download(name, archive):
        typer.echo(f"{folder}: {count_tasks(folder)} tasks, checksum ok")


def _pair_table(title: str, pairs: list[tuple[str, Grid | None]], width: int, colour: bool) -> Table:
    """Grids side by side, or one below the other when the terminal is too narrow for that."""
    from arcvdm.report.inspect import grid_text

    table = Table(title=title, show_header=False, box=None, padding=(0, 2), title_justify="left")
    side_by_side = sum(2 * g.shape[1] + 4 for _, g in pairs if g is not None) <= width
    cells = [Text(label + "\n").append_text(grid_text(g, colour)) if g is not None else Text(label) for label, g in pairs]
    if side_by_side:
        table.add_row(*cells)
    else:
        for cell in cells:
            table.add_row(cell)
    return table


@app.command()
def show(
    task: str = typer.Argument(..., help="A task file or DATASET:TASK_ID."),
    answers: bool = typer.Option(False, "--answers", help="Also draw the test outputs."),
    data_dir: Optional[str] = DataDir,
) -> None:
    """Draw a task in the terminal: train pairs side by side, then the test inputs."""
    from arcvdm.datasets import load_task_spec

    t = load_task_spec(task, data_dir)
    console = Console()
    colour = console.color_system is not None  # digits when piped
    parts: list = [Text(repr(t), style="bold")]
    for i, pair in enumerate(t.train):
        parts.append(_pair_table(f"train[{i}]", [(f"input {_shape(pair.input)}", pair.input), (f"output {_shape(pair.output)}", pair.output)], console.width, colour))
    for j, pair in enumerate(t.test):
        shown = [(f"input {_shape(pair.input)}", pair.input)]
        if answers and pair.output is not None:
            shown.append((f"output {_shape(pair.output)}", pair.output))
        parts.append(_pair_table(f"test[{j}]", shown, console.width, colour))
    console.print(Group(*parts))


def _shape(grid: Grid | None) -> str:
    return f"{grid.shape[0]}x{grid.shape[1]}" if grid is not None else ""
