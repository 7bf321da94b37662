"""ARC grids and tasks: pydantic models, validation with one-line errors, and loaders for files and folders."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, RootModel, model_validator

from arcvdm.errors import TaskFormatError
from arcvdm.io import read_json

MAX_SIDE = 30
FIX = "fix the file or remove it"
# Far above every published task (at most 10 train and 4 test pairs, 69 KB: ARC-AGI-1/2, ConceptARC), low enough
# that a hostile or broken file is refused at once instead of running for minutes on gigabytes of memory.
MAX_PAIRS = {"train": 50, "test": 20}
MAX_FILE_BYTES = 8_000_000  # 140 grids of 30x30 fit even pretty-printed with a wide indent


def check_grid(value: Any, where: str = "grid") -> None:
    """Raise TaskFormatError naming `where`, the row and the rule if `value` is not a valid ARC grid."""
    if not isinstance(value, (list, tuple)) or not value:
        raise TaskFormatError(f"{where}: a grid must be a non-empty list of rows, got {_short(value)}")
    if len(value) > MAX_SIDE:
        raise TaskFormatError(f"{where}: {len(value)} rows, at most {MAX_SIDE} allowed")
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, (list, tuple)) or not row:
            raise TaskFormatError(f"{where} row {r}: a row must be a non-empty list of integers, got {_short(row)}")
        if width is None:
            width = len(row)
            if width > MAX_SIDE:
                raise TaskFormatError(f"{where} row {r}: {width} columns, at most {MAX_SIDE} allowed")
        elif len(row) != width:
            raise TaskFormatError(f"{where} row {r}: {len(row)} cells but row 0 has {width} (grids must be rectangular)")
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 9:
                raise TaskFormatError(f"{where} row {r} col {c}: value {_short(v)} is not an integer 0-9")


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


class Grid(RootModel[list[list[int]]]):
    """A rectangular grid of 1-30 rows and columns with colours 0-9. `.array` is a read-only uint8 view."""

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        check_grid(value)
        return value

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Grid":
        return cls.model_validate(np.asarray(array).tolist())

    @cached_property
    def array(self) -> np.ndarray:
        a = np.array(self.root, dtype=np.uint8)
        a.flags.writeable = False
        return a

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.root), len(self.root[0])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Grid):
            return self.root == other.root
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.array.tobytes() + bytes(self.shape))

    def __repr__(self) -> str:
        return f"<Grid {self.shape[0]}x{self.shape[1]}>"


class Pair(BaseModel):
    input: Grid
    output: Grid | None = None


class Task(BaseModel):
    """One ARC problem. `concept` is set for ConceptARC; `source` is the file it came from."""

    model_config = ConfigDict(frozen=False)

    id: str
    train: list[Pair]
    test: list[Pair]
    concept: str | None = None
    source: str | None = None

    def __repr__(self) -> str:
        concept = f" | {self.concept}" if self.concept else ""
        return f"<Task {self.id} | {len(self.train)} train | {len(self.test)} test{concept}>"

    __str__ = __repr__

    def visible_grids(self) -> list[Grid]:
        """What a solver may see: train inputs and outputs, and test inputs (never test outputs)."""
        return [g for p in self.train for g in (p.input, p.output) if g is not None] + [p.input for p in self.test]

    def to_dict(self) -> dict[str, Any]:
        """The published JSON layout; `Task.from_dict(task.to_dict(), task.id)` round-trips."""

        def pair(p: Pair) -> dict[str, Any]:
            d: dict[str, Any] = {"input": p.input.root}
            if p.output is not None:
                d["output"] = p.output.root
            return d

        return {"train": [pair(p) for p in self.train], "test": [pair(p) for p in self.test]}

    @classmethod
    def from_dict(cls, data: Any, task_id: str, source: str | None = None, concept: str | None = None) -> "Task":
        """Validate published-format JSON, raising one-line errors naming the file, task, pair and rule."""
        origin = f"{source}: task {task_id}" if source else f"task {task_id}"
        if not isinstance(data, dict):
            raise TaskFormatError(f"{origin}: the top level must be an object with 'train' and 'test' lists; {FIX}")
        pairs: dict[str, list[Pair]] = {}
        for split in ("train", "test"):
            items = data.get(split)
            if not isinstance(items, list) or not items:
                raise TaskFormatError(f"{origin}: '{split}' must be a non-empty list of pairs; {FIX}")
            if len(items) > MAX_PAIRS[split]:
                raise TaskFormatError(f"{origin}: {len(items)} {split} pairs, at most {MAX_PAIRS[split]} allowed (published "
                                      f"ARC tasks have at most 10): split the task into smaller ones or remove it")
            pairs[split] = []
            for i, item in enumerate(items):
                if not isinstance(item, dict) or item.get("input") is None:
                    raise TaskFormatError(f"{origin}: {split}[{i}] must be an object with an 'input' grid; {FIX}")
                if split == "train" and item.get("output") is None:  # `"output": null` is as missing as no key
                    raise TaskFormatError(f"{origin}: train[{i}] has no 'output' grid; {FIX}")
                grids = {}
                for key in ("input", "output"):
                    if key in item and item[key] is not None:
                        try:
                            check_grid(item[key], f"{origin}: {split}[{i}].{key}")
                        except TaskFormatError as e:
                            raise TaskFormatError(f"{e}; {FIX}") from None
                        grids[key] = Grid.model_construct(item[key])
                pairs[split].append(Pair(**grids))
        return cls(id=task_id, train=pairs["train"], test=pairs["test"], concept=concept, source=source)


def load_task(path: str | Path, concept: str | None = None) -> Task:
    """Load one task file; the task id is the file name without `.json`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TaskFormatError(f"{path}: task {path.stem}: {size / 1e6:.1f} MB, at most {MAX_FILE_BYTES / 1e6:g} MB per task "
                                  "file (published ARC tasks are under 0.1 MB): split the task into smaller ones or remove it")
        data = read_json(path)
    except TaskFormatError:
        raise
    except FileNotFoundError:
        raise TaskFormatError(f"{path}: no such task file; check the path") from None
    except OSError as e:  # a folder or an unreadable file: one line, not a traceback
        raise TaskFormatError(f"{path}: cannot read the task file ({e.strerror}); pass a readable .json file") from None
    except ValueError as e:  # malformed JSON, bad UTF-8, nesting too deep
        raise TaskFormatError(f"{path}: task {path.stem}: not valid JSON ({e}); {FIX}") from None
    return Task.from_dict(data, path.stem, source=str(path), concept=concept)


class TaskSet:
    """Tasks loaded from a file or folder, indexable by position or id; `errors` holds the files that failed."""

    def __init__(self, name: str, tasks: list[Task], errors: list[TaskFormatError] | None = None):
        self.name = name
        self.tasks = tasks
        self.errors = errors or []
        self._by_id = {t.id: t for t in tasks}

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __getitem__(self, key: int | str) -> Task:
        if isinstance(key, str):
            if key not in self._by_id:
                raise TaskFormatError(f"{self.name}: no task with id '{key}'; a task id is its file name without .json")
            return self._by_id[key]
        return self.tasks[key]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    def __repr__(self) -> str:
        bad = f" | {len(self.errors)} malformed" if self.errors else ""
        return f"<TaskSet {self.name} | {len(self.tasks)} tasks{bad}>"


def load_tasks(path: str | Path, concept_from_folder: bool = False, name: str | None = None) -> TaskSet:
    """Load a task file or every `*.json` below a folder (sorted). Bad files are collected, good ones kept.

    With `concept_from_folder`, each task's concept is the name of the folder holding it (ConceptARC).
    """
    path = Path(path)
    if path.is_file():
        return TaskSet(name or path.stem, [load_task(path)])
    if not path.is_dir():
        raise TaskFormatError(f"{path}: no such task file or folder; check the path or use a dataset name")
    tasks, errors = [], []
    for file in sorted(path.rglob("*.json")):
        try:
            tasks.append(load_task(file, concept=file.parent.name if concept_from_folder else None))
        except TaskFormatError as e:
            errors.append(e)
    return TaskSet(name or path.name, tasks, errors)
