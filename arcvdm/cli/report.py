"""Commands `arcvdm inspect RUN TASK_ID` (terminal view of one problem) and `arcvdm report RUN` (static HTML)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from arcvdm.cli.app import app
from arcvdm.cli.score import DATA_DIR_HELP, DATASET_HELP, ground_truth
from arcvdm.errors import ArcvdmError


@app.command("inspect")
def inspect_command(
    run: Path = typer.Argument(..., help="A run folder."),
    task_id: str = typer.Argument(..., help="The problem to show."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Show one problem in colour: train pairs, test input, ground truth, attempts and each checkpoint with ✓/✗."""
    from arcvdm.formats import load_predictions
    from arcvdm.report.inspect import print_problem

    pset = load_predictions(run)
    if pset.family != "arc":
        raise ArcvdmError(f"{run}: a {pset.family} vision run: `arcvdm report {run}` shows its problems and images")
    _, tasks = ground_truth([pset], dataset, data_dir)
    if task_id not in tasks:
        raise ArcvdmError(f"{tasks.name}: no task '{task_id}'; the run has {', '.join(sorted(pset.records)[:5]) or 'no problems'}")
    unreadable = pset.tasks.get(task_id)
    note = None
    if unreadable is not None and unreadable.unusable:
        note = f"malformed problem file {unreadable.source}: {unreadable.reason()}; rerun the run to solve it again"
    print_problem(tasks[task_id], pset.records.get(task_id), Console(), note)


@app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="A run folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: RUN/report)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Write a static HTML report (index with sortable, filterable problems; one page per problem) that opens from disk.

    The terminal gets the page's problem counts, and each problem that is not scored as solved or unsolved
    (failed, no answer, malformed, not run) with its reason.
    """
    from rich.markup import escape

    from arcvdm.formats import load_predictions
    from arcvdm.io import writable_folder
    from arcvdm.report.html import write_report
    from arcvdm.report.overview import counts_line
    from arcvdm.report.tables import MAX_LISTED, print_warnings
    from arcvdm.scoring import score

    pset = load_predictions(run)
    if pset.kind != "run":
        raise ArcvdmError(f"{run}: not a run folder (no problems/ or config.json); `arcvdm score` reads other prediction sets")
    tasks = ground_truth([pset], dataset, data_dir)[1] if pset.family == "arc" else None
    report = write_report(pset, tasks, writable_folder(out or run / "report"))
    stderr, stdout = Console(stderr=True), Console()
    if tasks is not None:  # what the summary line cannot say: attempts beyond k, tasks without answers
        print_warnings(score(pset, tasks), stderr)
        stdout.print(counts_line(report.rows), highlight=False, soft_wrap=True)
        unscored = [r for r in report.rows if r.state not in ("solved", "unsolved")]
        for row in unscored[:MAX_LISTED]:
            stderr.print(f"  [yellow]{row.state}[/yellow] {escape(row.task_id)}: {escape(row.status)}", highlight=False, soft_wrap=True)
        if len(unscored) > MAX_LISTED:
            stderr.print(f"  … and {len(unscored) - MAX_LISTED} more: the report lists them all", highlight=False)
    for line in report.skipped:
        stderr.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    stdout.print(f"wrote {report.index}", highlight=False)
