"""A dataset run: pick the problems, skip the finished ones, execute the rest, keep a running score, write the summary.

Library entry point of `arcvdm run`; see `arcvdm/executors.py` for where the problems execute.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcvdm.config import RunConfig
from arcvdm.environment import environment_info
from arcvdm.errors import ArcvdmError, TaskFormatError
from arcvdm.executors import executor_for, failed_record, problem_folder, problem_path
from arcvdm.formats import MAX_ATTEMPTS, parse_task_entries
from arcvdm.io import atomic_write_json, read_json, safe_name, writable_folder
from arcvdm.scoring import score_task
from arcvdm.tasks import Task

# Keys that say where problems run or which ones, not what they compute: a resume may change them.
EXECUTION_ONLY = ("slurm", "tasks", "workers_per_gpu")


@dataclass
class RunSummary:
    """What a run invocation ended with; `summary.json` holds the same fields."""

    dataset: str
    out: str
    executor: str
    problems: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0  # already done before this invocation (resume)
    test_solved: int = 0  # strict per task, from the dataset's test outputs: a running display, not the score
    failures: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def line(self) -> str:
        return (f"{self.problems} problem{'s' if self.problems != 1 else ''}: {self.done} done ({self.skipped} skipped as already done), "
                f"{self.failed} failed; test solved {self.test_solved}/{self.problems} (strict, running display; "
                f"`arcvdm score {self.out}` for the score) in {self.elapsed_s:.0f} s")

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if k != "test_solved"}
        return {**fields, "test_solved_strict": self.test_solved,
                "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@dataclass
class Problem:
    """One entry of the run: a task to solve, or a reason it cannot be (malformed file, unsafe id)."""

    key: str  # the task id (its file under problems/ is named by io.safe_name) or, for an unsafe id, a sanitised key
    task_id: str  # the id as the dataset gives it (what scoring matches), even when it cannot be a file name
    task: Task | None = None
    error: str | None = None
    writable: bool = True  # False for unsafe ids: nothing is written under their name


def run_dataset(spec: str, config: RunConfig, out: str | Path, tasks: list[str] | None = None,
                limit: int | None = None, resume: bool = True, executor: str = "local",
                data_dir: str | None = None, log=print) -> RunSummary:
    """Solve every selected problem of `spec` into the run folder `out` and return the summary."""
    from arcvdm.backbones import check_config
    from arcvdm.datasets import DATASETS, load_dataset

    check_config(config)  # the backbone's shape rules, once, before any data or model loads
    execute = executor_for(executor)
    out = Path(out)
    started = time.time()
    problems = select_problems(load_dataset(spec, data_dir), tasks, limit)
    # A task file or folder is recorded absolute, so `arcvdm score OUT` works from any directory.
    if spec not in DATASETS and Path(spec).exists():
        spec = str(Path(spec).resolve())
    prepare_run_folder(out, config, spec, resume, [p.task_id for p in problems])
    summary = RunSummary(dataset=spec, out=str(out), executor=executor, problems=len(problems))

    # Each problem file is read once (when skipped as done, else when reported finished) and kept for the summary.
    records: dict[str, dict | None] = {}
    solved: set[str] = set()  # test-solved keys, judged once for both the bar and the summary
    pending: list[Task] = []
    for p in problems:
        if p.error is not None:  # listed with the other failures at the end (`arcvdm run` prints them once)
            records[p.key] = failed_record(p.key, p.error, config)
            if p.writable:
                atomic_write_json(problem_path(out, p.key), records[p.key])
        elif resume and (previous := read_record(problem_path(out, p.key))) and previous.get("status") == "done":
            records[p.key] = previous
            summary.skipped += 1
        else:
            # Remove a stale record so that a file present after execution is always this run's result.
            problem_path(out, p.key).unlink(missing_ok=True)
            shutil.rmtree(problem_folder(out, p.key), ignore_errors=True)
            pending.append(p.task)

    by_key = {p.key: p for p in problems}
    pending_ids = {t.id for t in pending}
    if pending:  # the same total as the bar below: it ticks the done and unusable problems at once
        unusable = len(problems) - len(pending) - summary.skipped
        log(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: {len(pending)} to solve, {summary.skipped} "
            f"already done{f', {unusable} that cannot run (listed at the end)' if unusable else ''}; "
            f"executor {executor}; results in {out}")
    with _ProgressBar(len(problems)) as bar:

        def finished(key: str) -> None:
            if key not in records:
                records[key] = read_record(problem_path(out, key))
            if test_solved(records[key], by_key[key].task):
                solved.add(key)
            bar.finished(records[key], key in solved)

        for p in problems:
            if p.key not in pending_ids:
                finished(p.key)
        if pending:
            execute(pending, config, out, finished)

    for p in problems:
        record = records.get(p.key) or {}
        status = record.get("status") or "failed: no result was written"
        if status == "done":
            summary.done += 1
        else:
            summary.failed += 1
            summary.failures[p.key] = status
    summary.test_solved = len(solved)
    summary.elapsed_s = round(time.time() - started, 2)
    atomic_write_json(out / "summary.json", summary.to_dict())
    return summary


def select_problems(taskset: Any, task_ids: list[str] | None, limit: int | None) -> list[Problem]:
    """The dataset's tasks and malformed files, filtered by `task_ids` (in dataset order), then the first `limit`."""
    problems = [_problem(t.id, task=t) for t in taskset]
    problems += [_problem(_stem_of(e), error=f"TaskFormatError: {e}") for e in taskset.errors]
    # File names compared as case-insensitive filesystems (macOS, Windows) do: the second would overwrite the first.
    seen: dict[str, str] = {}
    for i, p in enumerate(problems):
        name = safe_name(p.key).casefold()
        if name in seen:
            where = f" ({p.task.source})" if p.task and p.task.source else ""
            clash = ("appears twice in the dataset" if seen[name] == p.key else
                     f"and {seen[name]!r} would share one file name (case and Unicode form do not tell files apart on macOS and Windows)")
            problems[i] = Problem(f"duplicate-{p.key}-{i}", p.task_id, writable=False,
                                  error=f"ArcvdmError: task id {p.key!r}{where} {clash}: rename one")
        seen.setdefault(name, p.key)
    if task_ids:
        known = {_nfc(p.key) for p in problems}
        unknown = [i for i in task_ids if _nfc(i) not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ArcvdmError(f"--tasks: {', '.join(unknown)} not in {taskset.name} ({len(known)} task{'s' if len(known) != 1 else ''}).{hint}")
        wanted = {_nfc(i) for i in task_ids}
        problems = [p for p in problems if _nfc(p.key) in wanted]
    if limit is not None:
        if limit < 1:
            raise ArcvdmError(f"--limit {limit}: give a positive number of problems")
        problems = problems[:limit]
    return problems


def _problem(task_id: str, task: Task | None = None, error: str | None = None) -> Problem:
    try:
        safe_name(task_id)
    except ArcvdmError as e:
        # Never a file name: recorded under a sanitised key in the summary only.
        plain = re.sub(r"[^A-Za-z0-9_.\-]+", "_", task_id)[:60].strip("._") or "task"
        key = f"unsafe-{plain}-{hashlib.sha1(task_id.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        return Problem(key, task_id, task=None, error=f"ArcvdmError: {e}", writable=False)
    return Problem(task_id, task_id, task=task, error=error)


def _nfc(task_id: str) -> str:
    """--tasks matches ids in one Unicode form: a name typed on one system equals the same name from another's files."""
    return unicodedata.normalize("NFC", task_id)


def _stem_of(error: TaskFormatError) -> str:
    """The task id of a malformed file: its file name without `.json` (errors start with the file path)."""
    match = re.match(r"^(.+?\.json): ", str(error))
    return Path(match.group(1)).stem if match else "malformed"


def prepare_run_folder(out: Path, config: RunConfig, spec: str, resume: bool, task_ids: list[str] | None = None,
                       settings: dict[str, Any] | None = None) -> None:
    """Write config.json (with the selected task ids) and environment.json; refuse to resume with a different config.

    Written before any problem runs (an unwritable `out` is refused here, before the backbone loads), so an
    interrupted run still tells the scorer which tasks it set out to solve.
    A resume adds its selection to the recorded one: the folder holds the results of both. Vision runs pass no ids
    but their `settings` (shots, evaluation items), which a resume must match like the config.
    """
    writable_folder(out)
    config_data = {**config.model_dump(mode="json"), "dataset": spec, **(settings or {})}
    if task_ids is not None:
        config_data["tasks"] = task_ids
    config_path = out / "config.json"
    if resume and config_path.exists():
        try:
            previous = read_json(config_path)
        except (OSError, ValueError) as e:
            raise ArcvdmError(f"{config_path}: unreadable ({e}); use a new --out, or --no-resume to start over") from None
        changed = _differences(_comparable(_with_new_fields(previous)), _comparable(config_data))
        if changed:
            raise ArcvdmError(f"{out} holds a run with a different config ({'; '.join(changed[:3])}): "
                              "use a new --out, or --no-resume to start over")
        earlier = previous.get("tasks") if isinstance(previous.get("tasks"), list) else []
        if task_ids is not None:
            recorded = set(earlier)
            config_data["tasks"] = earlier + [t for t in task_ids if t not in recorded]
    if not resume:
        shutil.rmtree(out / "problems", ignore_errors=True)
        (out / "summary.json").unlink(missing_ok=True)
    for partial in (out / "problems").glob(".*.tmp"):  # a write cut short by a kill (atomic_write_* temporaries)
        partial.unlink(missing_ok=True)
    atomic_write_json(config_path, config_data)
    atomic_write_json(out / "environment.json", environment_info(config))


def read_run_config(out: str | Path) -> tuple[RunConfig, str]:
    """The config and dataset spec a run folder was made with (config.json minus its "dataset", "tasks", "vision" keys)."""
    data = read_json(Path(out) / "config.json")
    dataset = data.pop("dataset", None)
    data.pop("tasks", None)
    data.pop("vision", None)
    return RunConfig.model_validate(data), dataset


def _with_new_fields(previous: dict) -> dict:
    """An older config.json with the fields added since filled in as this version reads it (their defaults, and the
    family's default trainer choices), so upgrading arcvdm does not refuse to resume a run it computes the same way.
    A config this version cannot read is compared as it is: the differences then name what changed."""
    from arcvdm.backbones import check_config

    lora = previous.get("lora")
    if isinstance(lora, dict) and lora.get("targets") == "all-linear" and "first_frame" not in previous.get("train", {}):
        # Before train.first_frame was recorded, `all-linear` named today's `block-linear` set (the blocks' linears):
        # read it so, and a resume under peft's all-linear is refused rather than mixing two LoRAs in one run.
        previous = {**previous, "lora": {**lora, "targets": "block-linear"}}
    try:
        current = check_config(RunConfig.model_validate({k: v for k, v in previous.items()
                                                         if k in RunConfig.model_fields})).model_dump(mode="json")
    except (ArcvdmError, ValueError):
        return previous
    return _fill_missing(previous, current)


def _fill_missing(old: dict, full: dict) -> dict:
    filled = dict(old)
    for k, v in full.items():
        if k not in old:
            filled[k] = v
        elif isinstance(old[k], dict) and isinstance(v, dict):
            filled[k] = _fill_missing(old[k], v)
    return filled


def _comparable(config_data: dict) -> dict:
    return {k: v for k, v in config_data.items() if k not in EXECUTION_ONLY}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new)) for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def read_record(path: Path) -> dict | None:
    """A problem file's record, or None when it is missing, unreadable or not a JSON object."""
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def problem_status(path: Path) -> str | None:
    return (read_record(path) or {}).get("status")


def test_solved(record: dict | None, task: Task | None) -> bool:
    """Strict per-task, by the scorer's rule, for the running display (a dataset without test outputs solves none)."""
    if not record or record.get("status") != "done" or task is None or any(p.output is None for p in task.test):
        return False
    return score_task(task, parse_task_entries(record.get("attempts"), task.id, ""), MAX_ATTEMPTS).solved


class _ProgressBar:
    """A bar over problems with the running counts: done, failed, train-solved, test solved (strict)."""

    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="problems", unit="problem", dynamic_ncols=True)
        self.counts = {"failed": 0, "train-solved": 0, "test-solved": 0}

    def finished(self, record: dict | None, test_solved: bool) -> None:
        if record is None or record.get("status") != "done":
            self.counts["failed"] += 1
        else:
            self.counts["train-solved"] += (record.get("selection") or {}).get("solved_train_at") is not None
            self.counts["test-solved"] += test_solved
        self.bar.set_postfix(self.counts, refresh=False)  # drawn by the update: one line per problem in a log
        self.bar.update(1)

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()
