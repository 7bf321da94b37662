"""Every problem of an ARC run folder with its state, for the report's table and the terminal: one list for both,
so the page and the terminal always agree, and the counts add up to the run's problems.

The problems of a run are the tasks it selected (config.json "tasks"), then any other problem file in the folder;
an older run that recorded no selection has its problem files. Each gets one of STATES.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arcvdm.errors import ArcvdmError
from arcvdm.formats import PredictionSet
from arcvdm.io import safe_name
from arcvdm.scoring import ArcScore, TaskScore
from arcvdm.tasks import Task, TaskSet

# In the order the counts are given. "no answer": the dataset has no test output to score it against.
# "malformed": the task file could not be read by the run, or the problem file cannot be read now.
STATES = ("solved", "unsolved", "failed", "no answer", "malformed", "not run")


@dataclass
class ProblemRow:
    task_id: str
    state: str  # one of STATES
    status: str  # the problem file's status, or why there is none
    record: dict[str, Any] | None = None
    task: Task | None = None  # the dataset's task, when it has one with this id
    score: TaskScore | None = None  # None when not scored (no answer, not in the dataset)
    page: str | None = None  # the problem page's file name; None when the report has none


def problem_rows(pset: PredictionSet, tasks: TaskSet, result: ArcScore) -> list[ProblemRow]:
    """One row per problem of the run `pset`, scored in `result`."""
    scores = {t.task_id: t for t in result.tasks}
    unreadable = {t.task_id: t for t in pset.unusable()}  # keyed by file name: the id inside cannot be read
    by_file = {}
    for task_id in [*(pset.selected or []), *pset.records]:
        try:
            by_file.setdefault(safe_name(task_id), task_id)
        except ArcvdmError:
            pass
    unreadable = {by_file.get(name, name): t for name, t in unreadable.items()}
    ids = list(dict.fromkeys([*(pset.selected or []), *sorted(pset.records), *sorted(unreadable)]))
    rows = []
    for task_id in ids:
        task = tasks[task_id] if task_id in tasks else None
        row = ProblemRow(task_id, "", "", pset.records.get(task_id), task, scores.get(task_id))
        if task_id in unreadable:
            broken = unreadable[task_id]
            row.state, row.status = "malformed", f"malformed problem file {broken.source}: {broken.reason()}; rerun the run to solve it again"
        elif row.record is None:
            row.state, row.status = _without_record(task_id)
        else:
            row.status = str(row.record.get("status") or "unknown")
            row.state = _state(row, tasks.name)
        rows.append(row)
    return rows


def _without_record(task_id: str) -> tuple[str, str]:
    try:
        safe_name(task_id)
    except ArcvdmError as e:  # the run refuses such an id before any work, and writes no file for it
        return "failed", f"failed: {e}"
    return "not run", "no problem file: not run yet, or the run was interrupted; rerun it to solve this problem"


def _state(row: ProblemRow, dataset: str) -> str:
    done = row.status == "done"
    if row.task is None:
        if row.status.startswith("failed: TaskFormatError"):
            return "malformed"
        row.status += f"; task not in {dataset}"
        return "no answer" if done else "failed"
    if any(p.output is None for p in row.task.test):
        return "no answer"
    if not done:
        return "failed"
    return "solved" if row.score is not None and row.score.solved else "unsolved"


def counts_line(rows: list[ProblemRow]) -> str:
    """'6 problems in this run: 1 solved, 2 unsolved, ...': every state present, adding up to the total."""
    counts = {state: sum(r.state == state for r in rows) for state in STATES}
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return f"{len(rows)} problem{'s' if len(rows) != 1 else ''} in this run" + (": " + ", ".join(parts) if parts else "")
