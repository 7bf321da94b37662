"""Commands `arcvdm score`, `arcvdm compare` and `arcvdm export`: score prediction sets, compare them, convert them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from arcvdm.cli.app import app
from arcvdm.errors import ArcvdmError

DATASET_HELP = "Dataset name (arc-agi-1/evaluation, conceptarc, ...) or a task folder. Optional for run folders: read from config.json."
DATA_DIR_HELP = "Folder holding the datasets (default: $ARCVDM_DATA, then the user cache)."
ALL_TASKS_HELP = "Score run folders on the whole dataset (tasks the run did not select count as missing), not on the run's selection."


def load_scored(paths: list[Path], dataset: Optional[str], data_dir: Optional[str], attempts: Optional[int] = None,
                all_tasks: bool = False, tasks_from: Optional[Path] = None):
    """Read each prediction set and score it on the same tasks; the dataset comes from --dataset or the first run's config.
    `tasks_from`: a run folder whose selected tasks are the ones scored (an export of that run scores as the run).

    Returns (dataset spec, scores, prediction sets, the task ids scored on or None for the whole dataset).
    """
    from arcvdm.compare import shared_selection
    from arcvdm.formats import load_predictions
    from arcvdm.scoring import score, score_tasks

    psets = [load_predictions(p) for p in paths]
    seen: dict[str, int] = {}
    for p in psets:  # two sets with the same name (two `submissions` folders) must stay apart in tables
        seen[p.name] = seen.get(p.name, 0) + 1
        if seen[p.name] > 1:
            p.name = f"{p.name} ({seen[p.name]})"
    scope = load_predictions(tasks_from) if tasks_from is not None else None
    if scope is not None and scope.selected is None:
        raise ArcvdmError(f"--tasks-from {tasks_from}: not a run folder that records its selected tasks (config.json \"tasks\")")
    arc = [p for p in psets if p.family == "arc"]  # a vision run's "dataset" is its picture source, not answers
    spec, tasks = ground_truth(arc + ([scope] if scope else []), dataset, data_dir) if arc else (dataset, None)
    selection = scope.selected if scope is not None else shared_selection(psets, all_tasks)
    # Run folders first: a selection outside the dataset is then refused by a run that made it, not by another set.
    scored = {id(p): score_tasks(p, tasks, attempts, selection) if p.family == "arc" else score(p)
              for p in sorted(psets, key=lambda q: q.selected is None)}
    return spec, [scored[id(p)] for p in psets], psets, selection


def ground_truth(psets: list, dataset: Optional[str], data_dir: Optional[str]):
    """The dataset spec and tasks to score ARC prediction sets against: --dataset, else the first recorded in a config.json."""
    from arcvdm.scoring import load_answers

    spec = dataset or next((p.dataset for p in psets if p.dataset), None)
    if spec is None:
        raise ArcvdmError(f"{psets[0].path}: no dataset given and none recorded in a config.json: pass --dataset NAME_OR_PATH")
    return spec, load_answers(spec, data_dir)


@app.command("score")
def score_command(
    predictions: Path = typer.Argument(..., help="A run folder, a folder of <task_id>.json (arc-agi-benchmarking) or a Kaggle submission.json."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    attempts: Optional[int] = typer.Option(None, "--attempts", help="Count only attempts 1..N (default: all given)."),
    all_tasks: bool = typer.Option(False, "--all-tasks", help=ALL_TASKS_HELP),
    tasks_from: Optional[Path] = typer.Option(None, "--tasks-from", help="Score only the tasks this run folder selected "
                                              "(re-scoring its export gives the run's numbers)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Score predictions: strict per-task, per-output, pass@k, lenient levels (and per concept on ConceptARC).

    A run folder is scored on the tasks it selected (--tasks/--limit) unless --all-tasks; other sets on the whole
    dataset, or on the tasks a run selected with --tasks-from RUN.
    """
    from arcvdm.report.tables import print_score, shape_from_truth

    if tasks_from is not None and all_tasks:
        raise ArcvdmError("--tasks-from and --all-tasks contradict each other: pass one")
    _, (result,), (pset,), _ = load_scored([predictions], dataset, data_dir, attempts, all_tasks, tasks_from)
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        print_score(result, Console(), size_from_truth=shape_from_truth(pset))


@app.command("compare")
def compare_command(
    predictions: list[Path] = typer.Argument(..., help="Two or more prediction sets (run folders, submission folders or files)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Compare on the whole dataset instead of the tasks every run folder selected."),
    wide: bool = typer.Option(False, "--wide", help="Add pass@k, the lenient levels and compute per problem (a wide terminal)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables (every column)."),
) -> None:
    """Compare prediction sets side by side with the published reference rows, and which problems each solves.

    All sets are scored on the same tasks: those every run folder selected (their intersection), or the whole
    dataset with --all-tasks or when no run folder is given.
    """
    from arcvdm.compare import compare
    from arcvdm.report.tables import print_comparison, shape_from_truth

    spec, scores, psets, selection = load_scored(predictions, dataset, data_dir, all_tasks=all_tasks)
    comparison = compare(scores, spec or "", selection)
    if as_json:
        print(json.dumps(comparison.to_dict()))
    else:
        given = frozenset(s.name for s, p in zip(scores, psets) if shape_from_truth(p))
        print_comparison(comparison, Console(), wide=wide, size_from_truth=given)


@app.command("export")
def export_command(
    run: Path = typer.Argument(..., help="A run folder (or any prediction set) to convert."),
    fmt: str = typer.Option(..., "--format", "-f", help="kaggle (one submission.json) or arc-agi-benchmarking (one <task_id>.json per task)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (kaggle) or folder (arc-agi-benchmarking)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP + " Other sets: give it to export every task of it."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Write a run's attempts as a Kaggle submission.json or an arc-agi-benchmarking submissions folder.

    Every task of the run's selection (of the whole dataset for runs that recorded none, or with --dataset for
    other sets), every test output, attempt_1 and attempt_2 only; [[0]] where there is no attempt, counted in a
    warning. Tasks left out (not in the dataset, ids that cannot be file names) are named one line each.
    """
    from rich.markup import escape

    from arcvdm.formats import build_export, load_predictions, write_arc_agi_benchmarking, write_kaggle
    from arcvdm.io import writable_file, writable_folder

    if fmt not in ("kaggle", "arc-agi-benchmarking"):
        raise ArcvdmError(f"unknown export format '{fmt}': use --format kaggle or --format arc-agi-benchmarking")
    pset = load_predictions(run)
    if pset.family != "arc":
        raise ArcvdmError(f"{run}: a {pset.family} vision run has metrics, not ARC attempts: nothing to export")
    target = writable_file(out) if fmt == "kaggle" else writable_folder(out)
    tasks = ground_truth([pset], dataset, data_dir)[1] if dataset or pset.kind == "run" else None
    export = build_export(pset, tasks)
    if fmt == "kaggle":
        write_kaggle(export, target)
        written = f"{out} ({len(export.entries)} tasks, {export.outputs()} test outputs)"
    else:
        written = f"{len(write_arc_agi_benchmarking(export, target))} task files in {out}"
    stderr = Console(stderr=True)
    for line in [*export.notes, export.warning()]:
        if line:
            stderr.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    Console().print(f"wrote {written}", highlight=False)
