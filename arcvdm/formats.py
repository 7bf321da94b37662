"""Prediction sets in and out: arcvdm run folders, arc-agi-benchmarking folders and Kaggle `submission.json`.

Every reader returns a `PredictionSet`: per task, one list of attempts per test input. A file that cannot be
read (not JSON, not a list) is kept as *unusable* with a one-line reason, and an attempt that is not a valid
ARC grid (ragged rows, values outside 0-9, more than 30 rows) becomes `None` with a reason: the scorer
counts both as wrong and reports them by file. Sibling attempts of a bad one still count, as upstream's
scorer does (o1-high's 157.0/400 includes such tasks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcvdm.errors import ArcvdmError, TaskFormatError
from arcvdm.io import atomic_write_json, read_json, safe_name
from arcvdm.tasks import Grid, TaskSet, check_grid

_ATTEMPT_KEY = re.compile(r"^attempt_([1-9][0-9]*)$")
MAX_ATTEMPTS = 100  # far above any benchmark's k

Attempts = list[Grid | None]  # attempt_1, attempt_2, ... of one test input; None = no (valid) answer


@dataclass
class TaskPredictions:
    """What a prediction set says about one task. `unusable` = the whole file is wrong (reason in `issues`)."""

    task_id: str
    source: str
    entries: list[Attempts] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    unusable: bool = False

    def reason(self) -> str | None:
        """One line for the report: the first issue, and how many more there are."""
        if not self.issues:
            return None
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        return self.issues[0] + more


@dataclass
class PredictionSet:
    """Predictions of one solver on one dataset. `records` and `config` are filled for arcvdm run folders."""

    name: str
    kind: str  # "run", "arc-agi-benchmarking" or "kaggle"
    path: Path
    tasks: dict[str, TaskPredictions] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # run folder: problem JSON by task id
    config: dict[str, Any] | None = None

    @property
    def family(self) -> str:
        """"arc", or the vision family: from config.json, else from the problem files (the vision runner's own)."""
        configured = (self.config or {}).get("family", "arc")
        if configured != "arc":
            return configured
        return next((r["family"] for r in self.records.values() if r.get("family") not in (None, "arc")), "arc")

    @property
    def dataset(self) -> str | None:
        """The dataset a run folder was made on (config.json key "dataset")."""
        return (self.config or {}).get("dataset")

    @property
    def selected(self) -> list[str] | None:
        """The task ids a run folder set out to solve (config.json key "tasks"); None for other sets and older runs."""
        tasks = (self.config or {}).get("tasks")
        return [str(t) for t in tasks] if isinstance(tasks, list) else None

    def unusable(self) -> list[TaskPredictions]:
        """The files that could not be read at all (a truncated problem file, not JSON, not a list)."""
        return [t for _, t in sorted(self.tasks.items()) if t.unusable]

    def max_attempts(self) -> int:
        return max((len(a) for t in self.tasks.values() for a in t.entries), default=0)

    def __repr__(self) -> str:
        return f"<PredictionSet {self.name} | {self.kind} | {len(self.tasks)} tasks>"


def parse_attempt(value: Any, where: str) -> tuple[Grid | None, str | None]:
    """A grid, null, or {"answer": grid, "metadata": ...} → (Grid or None, issue or None)."""
    if isinstance(value, dict):
        if "answer" not in value:
            return None, f"{where}: an attempt object needs an 'answer' grid, got keys {sorted(value)}"
        value = value["answer"]
    if value is None:
        return None, None
    try:
        check_grid(value, where)
    except TaskFormatError as e:
        return None, str(e)
    return Grid.model_construct(value), None


def parse_task_entries(data: Any, task_id: str, source: str) -> TaskPredictions:
    """Parse one task's list (one entry per test input). Bare grids and nulls from older runs are accepted."""
    pred = TaskPredictions(task_id=task_id, source=source)
    if not isinstance(data, list):
        pred.unusable = True
        pred.issues.append(f"must be a list with one entry per test input, got {type(data).__name__}")
        return pred
    for i, entry in enumerate(data):
        where = f"test {i}"
        if entry is None:
            pred.entries.append([])
        elif isinstance(entry, list):  # an older run's bare grid: the single attempt
            grid, issue = parse_attempt(entry, f"{where} attempt_1")
            pred.entries.append([grid])
            if issue:
                pred.issues.append(issue)
        elif isinstance(entry, dict):
            numbered = {int(m.group(1)): v for k, v in entry.items() if (m := _ATTEMPT_KEY.match(k))}
            if not numbered:
                pred.issues.append(f"{where}: no attempt_1/attempt_2 keys (got {sorted(entry)[:4]})")
            if max(numbered, default=0) > MAX_ATTEMPTS:  # attempt_999999999 would allocate a list that long
                pred.issues.append(f"{where}: attempt_{max(numbered)}: at most attempt_{MAX_ATTEMPTS} is read")
                numbered = {n: v for n, v in numbered.items() if n <= MAX_ATTEMPTS}
            attempts: Attempts = [None] * max(numbered, default=0)
            for n, value in sorted(numbered.items()):
                attempts[n - 1], issue = parse_attempt(value, f"{where} attempt_{n}")
                if issue:
                    pred.issues.append(issue)
            pred.entries.append(attempts)
        else:
            pred.entries.append([])
            pred.issues.append(f"{where}: an entry must be an object with attempt_1.., got {type(entry).__name__}")
    return pred


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return read_json(path), None
    except ValueError as e:  # malformed JSON, bad UTF-8, nesting too deep
        return None, f"not valid JSON ({str(e).splitlines()[0]})"
    except OSError as e:
        return None, f"cannot be read ({e.strerror})"


def _unusable(task_id: str, source: str, reason: str) -> TaskPredictions:
    return TaskPredictions(task_id=task_id, source=source, issues=[reason], unusable=True)


def load_predictions(path: str | Path, name: str | None = None) -> PredictionSet:
    """Read a run folder, an arc-agi-benchmarking folder (or one task file) or a Kaggle submission.json."""
    path = Path(path)
    if path.is_dir():
        if (path / "problems").is_dir() or (path / "config.json").is_file():
            return _load_run(path, name)
        return _load_benchmarking_folder(path, name)
    if not path.is_file():
        raise ArcvdmError(f"{path}: no such prediction file or folder; give a run folder, a folder of <task_id>.json or a submission.json")
    data, error = _read_json(path)
    if error:
        raise ArcvdmError(f"{path}: {error}; a Kaggle submission must be one JSON object of task id → list of attempts")
    if isinstance(data, list):  # a single arc-agi-benchmarking task file
        pset = PredictionSet(name or path.stem, "arc-agi-benchmarking", path)
        pset.tasks[path.stem] = parse_task_entries(data, path.stem, str(path))
        return pset
    if not isinstance(data, dict):
        raise ArcvdmError(f"{path}: top level is {type(data).__name__}; a Kaggle submission is an object of task id → list")
    pset = PredictionSet(name or path.stem, "kaggle", path)
    for task_id, entries in data.items():
        pset.tasks[task_id] = parse_task_entries(entries, task_id, f"{path}[{task_id}]")
    return pset


def _default_name(path: Path) -> str:
    # upstream keeps each model's files in <model>/submissions/: name the set after the model.
    return path.parent.name if path.name == "submissions" else path.name


def _load_benchmarking_folder(path: Path, name: str | None) -> PredictionSet:
    submissions = path / "submissions"
    if submissions.is_dir() and any(submissions.glob("*.json")):  # upstream's <model>/ holds results.json beside it
        raise ArcvdmError(f"{path}: a model folder; its predictions are in {submissions}: arcvdm score {submissions}")
    files = sorted(path.glob("*.json"))
    if not files:
        raise ArcvdmError(f"{path}: no <task_id>.json files here; give a run folder, a submissions folder or a submission.json")
    pset = PredictionSet(name or _default_name(path), "arc-agi-benchmarking", path)
    for file in files:
        data, error = _read_json(file)
        task = _unusable(file.stem, str(file), error) if error else parse_task_entries(data, file.stem, str(file))
        pset.tasks[file.stem] = task
    return pset


def _load_run(path: Path, name: str | None) -> PredictionSet:
    pset = PredictionSet(name or path.name, "run", path)
    config, error = _read_json(path / "config.json") if (path / "config.json").is_file() else ({}, None)
    if error or not isinstance(config, dict):
        raise ArcvdmError(f"{path / 'config.json'}: {error or 'not an object'}; the run folder's config is damaged")
    pset.config = config
    for file in sorted((path / "problems").glob("*.json")):
        record, error = _read_json(file)
        if error or not isinstance(record, dict):
            pset.tasks[file.stem] = _unusable(file.stem, str(file), error or "a problem file must be a JSON object")
            continue
        task_id = str(record.get("task_id", file.stem))
        pset.records[task_id] = record
        # A failed or unfinished problem has no attempts: the scorer counts it as missing.
        if record.get("status") == "done" and "attempts" in record:
            pset.tasks[task_id] = parse_task_entries(record["attempts"], task_id, str(file))
    return pset


EXPORTED_ATTEMPTS = 2  # Kaggle's ARC Prize format and arc-agi-benchmarking score attempt_1 and attempt_2
PLACEHOLDER = [[0]]  # the grid written where a set has no (valid) attempt: the formats require a grid


@dataclass
class Export:
    """What `arcvdm export` writes: per task id, one {"attempt_1": grid, "attempt_2": grid} per test input.

    `placeholders` counts the grids written as PLACEHOLDER; `empty` names the tasks that had no attempt at all
    (failed, not run, unreadable problem file) and `notes` holds one line per task left out or file unreadable.
    """

    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    placeholders: int = 0
    empty: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def outputs(self) -> int:
        return sum(len(e) for e in self.entries.values())

    def warning(self) -> str | None:
        """One line when placeholders were written, else None."""
        if not self.placeholders:
            return None
        in_empty = sum(EXPORTED_ATTEMPTS * len(self.entries[t]) for t in self.empty)
        shown = ", ".join(self.empty[:5]) + (" …" if len(self.empty) > 5 else "")
        parts = [f"{in_empty} for {len(self.empty)} task{'s' if len(self.empty) != 1 else ''} without attempts ({shown})"] if self.empty else []
        if self.placeholders > in_empty:
            parts.append(f"{self.placeholders - in_empty} for missing or invalid attempts")
        return (f"{self.placeholders} placeholder grid{'s' if self.placeholders != 1 else ''} {PLACEHOLDER} written "
                f"where the set has no attempt: {'; '.join(parts)}")


def build_export(pset: PredictionSet, tasks: TaskSet | None = None) -> Export:
    """Two attempts per test output for every task to export, PLACEHOLDER where there is none.

    With `tasks` (the dataset), the tasks are the dataset's, or those a run folder selected (config.json "tasks"),
    in dataset order, each with one entry per test input, whatever the set holds; ids the set has beyond them are
    skipped with a line. Without it, the tasks are those the set holds (an unreadable file is then skipped: its
    number of test inputs is unknown). Attempts beyond the second are never exported.
    """
    export = Export()
    if tasks is None:
        shape = {tid: len(t.entries) for tid, t in sorted(pset.tasks.items()) if not t.unusable}
    else:
        selected = None if pset.selected is None else set(pset.selected)
        shape = {t.id: len(t.test) for t in tasks if selected is None or t.id in selected}
        others = [tid for tid in [*(pset.selected or []), *pset.records, *pset.tasks] if tid not in shape]
        for tid in dict.fromkeys(others):
            if tid in tasks or (pset.tasks.get(tid) and pset.tasks[tid].unusable):
                continue  # beyond the run's selection, or an unreadable file named by its file name
            status = (pset.records.get(tid) or {}).get("status")
            export.notes.append(f"task {tid!r}: not in {tasks.name}, not exported" + (f" ({status})" if status else ""))
    export.notes += [f"malformed {t.source}: {t.reason()}; " + ("exported as placeholders" if t.task_id in shape else "not exported")
                     for t in pset.unusable()]
    for tid, n_tests in shape.items():
        pred = pset.tasks.get(tid)
        given = [] if pred is None or pred.unusable else pred.entries
        if not any(g is not None for attempts in given for g in attempts):
            export.empty.append(tid)
        entries = []
        for j in range(n_tests):
            attempts = (given[j] if j < len(given) else [])[:EXPORTED_ATTEMPTS]
            attempts = attempts + [None] * (EXPORTED_ATTEMPTS - len(attempts))
            export.placeholders += sum(g is None for g in attempts)
            entries.append({f"attempt_{n}": (g.root if g is not None else PLACEHOLDER) for n, g in enumerate(attempts, 1)})
        export.entries[tid] = entries
    return export


def write_kaggle(export: Export, out: str | Path) -> Path:
    """Write a Kaggle submission.json: task id → entries. Ids are JSON keys here, so any id is kept."""
    return atomic_write_json(out, export.entries)


def write_arc_agi_benchmarking(export: Export, out_dir: str | Path) -> list[Path]:
    """Write one `<task_id>.json` per task (arc-agi-benchmarking's submissions folders), named by io.safe_name.

    An id that cannot be a file name, or that would share one with another on a case-insensitive filesystem, is
    skipped with a line in `export.notes`; the other files are written.
    """
    out_dir, written, names = Path(out_dir), [], {}
    for tid, entries in export.entries.items():
        try:
            name = safe_name(tid)
        except ArcvdmError as e:
            export.notes.append(f"{e}; not exported")
            continue
        if name.casefold() in names:
            export.notes.append(f"task id {tid!r} and {names[name.casefold()]!r} would share the file {name}.json "
                                  "on a case-insensitive filesystem; not exported")
            continue
        names[name.casefold()] = tid
        written.append(atomic_write_json(out_dir / f"{name}.json", entries))
    return written
