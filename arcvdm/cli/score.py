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
                all_tasks: bool = False):
    """Read each prediction set and score it on the same tasks; the dataset comes from --dataset or the first run's config.

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
    arc = [p for p in psets if p.family == "arc"]  # a vision run's "dataset" is its picture source, not answers
    spec, tasks = ground_truth(arc, dataset, data_dir) if arc else (dataset, None)
    selection = shared_selection(psets, all_tasks)
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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Score predictions: strict per-task, per-output, pass@k, lenient levels (and per concept on ConceptARC).

    A run folder is scored on the tasks it selected (--tasks/--limit) unless --all-tasks; other sets on the whole dataset.
    """
    from arcvdm.report.tables import print_score

    _, (result,), _, _ = load_scored([predictions], dataset, data_dir, attempts, all_tasks)
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        print_score(result, Console())


@app.command("compare")
def compare_command(
    predictions: list[Path] = typer.Argument(..., help="Two or more prediction sets (run folders, submission folders or files)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Compare on the whole dataset instead of the tasks every run folder selected."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Compare prediction sets side by side with the published reference rows, and which problems each solves.

    All sets are scored on the same tasks: those every run folder selected (their intersection), or the whole
    dataset with --all-tasks or when no run folder is given.
    """
    from arcvdm.compare import compare
    from arcvdm.report.tables import print_comparison

    spec, scores, _, selection = load_scored(predictions, dataset, data_dir, all_tasks=all_tasks)
    comparison = compare(scores, spec or "", selection)
    if as_json:
        print(json.dumps(comparison.to_dict()))
    else:
        print_comparison(comparison, Console())


@app.command("export")
def export_command(
    run: Path = typer.Argument(..., help="A run folder (or any prediction set) to convert."),
    fmt: str = typer.Option(..., "--format", "-f", help="kaggle (one submission.json) or arc-agi-benchmarking (one <task_id>.json per task)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (kaggle) or folder (arc-agi-benchmarking)."),
) -> None:
    """Write a run's attempts as a Kaggle submission.json or an arc-agi-benchmarking submissions folder.

    Problem files that cannot be read are left out and named.
    """
    from arcvdm.formats import load_predictions, write_arc_agi_benchmarking, write_kaggle
    from arcvdm.io import writable_file, writable_folder
    from arcvdm.report.tables import print_unusable

    if fmt not in ("kaggle", "arc-agi-benchmarking"):
        raise ArcvdmError(f"unknown export format '{fmt}': use --format kaggle or --format arc-agi-benchmarking")
    pset = load_predictions(run)
    if pset.family != "arc":
        raise ArcvdmError(f"{run}: a {pset.family} vision run has metrics, not ARC attempts: nothing to export")
    if fmt == "kaggle":
        write_kaggle(pset, writable_file(out))
        written = f"{out} ({len(pset.tasks) - len(pset.unusable())} tasks)"
    else:
        written = f"{len(write_arc_agi_benchmarking(pset, writable_folder(out)))} task files in {out}"
    print_unusable(pset, "not exported", Console(stderr=True))
    Console().print(f"wrote {written}", highlight=False)
