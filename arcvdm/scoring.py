"""Score a prediction set against a dataset: strict per-task, per-output, pass@k, lenient levels, per concept.

Definitions (each number says which one it is):
- strict: a task is solved only when every test output is matched exactly by one of its attempts (paper, Table 3);
- per-output: a task scores the fraction of its test outputs matched (arc-agi-benchmarking, ARC Prize);
  `outputs_solved` is the plain count of test outputs matched;
- pass@k: the same three figures using only attempts 1..k;
- the headline (strict, per-output, lenient, per concept) counts the dataset's k attempts (2 for ARC-AGI, 3 for
  ConceptARC) or `--attempts`: a set giving more attempts has them in the pass@k table only, with a warning,
  so attempt 3 never lifts an ARC-AGI headline;
- lenient levels, strict to loose: exact; best attempt's cell accuracy >= 90%, 75%, 50%; right output shape.
  Cell accuracy is the fraction of equal cells when the shapes agree and 0 otherwise, so the levels nest.
Missing tasks and unusable files count as wrong and are listed. Vision runs get mean/std of each metric.
A run folder is scored on the tasks it selected (config.json "tasks"; scope "run") unless told to take the whole
dataset (scope "dataset"), so `--limit 2` is not reported as 398 missing; other prediction sets take the whole dataset.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

import numpy as np

from arcvdm.errors import ArcvdmError
from arcvdm.formats import Attempts, PredictionSet, TaskPredictions
from arcvdm.tasks import Grid, Task, TaskSet

LENIENT_LEVELS: dict[str, float | None] = {
    "exact": 1.0,
    "cells>=90%": 0.9,
    "cells>=75%": 0.75,
    "cells>=50%": 0.5,
    "shape": None,
}
COMPUTE_FIELDS = ("train_steps_run", "nfe", "forward_flops")


def cell_accuracy(attempt: Grid | None, truth: Grid) -> float:
    if attempt is None or attempt.shape != truth.shape:
        return 0.0
    return float(np.mean(attempt.array == truth.array))


def kept_and_changed(attempt: Grid | None, truth: Grid, given: Grid) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Cells right among those the rule keeps (the input's cell equals the truth's) and among those it changes,
    each as (right, of): a miss on a kept cell is the drawing's, on a changed one the rule's. None when the input
    and the truth differ in shape (no cell-to-cell view); an attempt of another shape gets no cell right."""
    if given.shape != truth.shape:
        return None
    kept = given.array == truth.array
    right = (attempt.array == truth.array) if attempt is not None and attempt.shape == truth.shape else np.zeros_like(kept)
    return (int((right & kept).sum()), int(kept.sum())), (int((right & ~kept).sum()), int((~kept).sum()))


@dataclass(frozen=True)
class OutputScore:
    """One test output: the first exact attempt among the k counted (1-based, None if none), the best cell
    accuracy and shape match among them, and the first exact attempt among all given (for pass@k beyond k)."""

    correct_at: int | None = None
    best_accuracy: float = 0.0
    shape_ok: bool = False
    first_exact: int | None = None

    @classmethod
    def of(cls, attempts: Attempts, truth: Grid, k: int) -> "OutputScore":
        first_exact = next((n for n, g in enumerate(attempts, 1) if g is not None and g == truth), None)
        counted = attempts[:k]
        best = max((cell_accuracy(g, truth) for g in counted), default=0.0)
        shape_ok = any(g is not None and g.shape == truth.shape for g in counted)
        correct_at = first_exact if first_exact is not None and first_exact <= k else None
        return cls(correct_at, best, shape_ok, first_exact)

    def meets(self, level: str) -> bool:
        threshold = LENIENT_LEVELS[level]
        if threshold is None:
            return self.shape_ok
        return self.correct_at is not None if threshold == 1.0 else self.best_accuracy >= threshold


@dataclass
class TaskScore:
    task_id: str
    concept: str | None
    outputs: list[OutputScore]
    status: str = "scored"  # "scored", "missing" or "malformed"
    reason: str | None = None

    def fraction(self, solved: Callable[[OutputScore], bool]) -> float:
        return sum(map(solved, self.outputs)) / len(self.outputs)

    @property
    def solved(self) -> bool:
        """Strict: every test output matched."""
        return all(o.correct_at is not None for o in self.outputs)


@dataclass(frozen=True)
class Tally:
    strict_solved: int
    per_output_score: float
    outputs_solved: int

    def to_dict(self) -> dict[str, Any]:
        return {"strict_solved": self.strict_solved, "per_output_score": round(self.per_output_score, 6), "outputs_solved": self.outputs_solved}


@dataclass
class ArcScore:
    name: str
    dataset: str
    attempts: int  # k: the attempts the headline counts
    tasks: list[TaskScore]
    malformed_files: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    unknown_tasks: list[str] = field(default_factory=list)  # predicted ids the dataset does not have
    compute: dict[str, float] = field(default_factory=dict)  # mean per problem, run folders only
    dataset_tasks: int = 0  # tasks in the whole dataset; len(tasks) is fewer when scope is "run"
    scope: str = "dataset"  # "run": only the tasks the run selected; "dataset": every task of the dataset
    attempts_given: int = 0  # the most attempts the set gives for one test input (may exceed `attempts`)
    attempts_from: str = "the dataset's rule"  # why the headline counts `attempts`: the rule or --attempts
    unanswered: list[str] = field(default_factory=list)  # selected tasks the dataset has no test output for: not scored

    def tally(self, solved: Callable[[OutputScore], bool]) -> Tally:
        return Tally(
            strict_solved=sum(all(map(solved, t.outputs)) for t in self.tasks),
            per_output_score=sum(t.fraction(solved) for t in self.tasks),
            outputs_solved=sum(solved(o) for t in self.tasks for o in t.outputs),
        )

    @property
    def exact(self) -> Tally:
        return self.tally(lambda o: o.correct_at is not None)

    @property
    def outputs_total(self) -> int:
        return sum(len(t.outputs) for t in self.tasks)

    @property
    def missing(self) -> list[str]:
        return [t.task_id for t in self.tasks if t.status == "missing"]

    def solved_ids(self) -> set[str]:
        return {t.task_id for t in self.tasks if t.solved}

    def pass_at_k(self) -> dict[int, Tally]:
        """pass@1 .. pass@max(k, attempts given): the only figures that count attempts beyond k."""
        top = max(self.attempts, self.attempts_given)
        return {k: self.tally(lambda o, k=k: o.first_exact is not None and o.first_exact <= k) for k in range(1, top + 1)}

    @property
    def attempts_warning(self) -> str | None:
        """One line when the set gives more attempts than the headline counts, else None."""
        if self.attempts_given <= self.attempts:
            return None
        return (f"{self.name} gives {self.attempts_given} attempts per test output: the headline counts attempts "
                f"1-{self.attempts} ({self.attempts_from}); the others show only in the pass@k table")

    def lenient(self) -> dict[str, Tally]:
        return {level: self.tally(lambda o, level=level: o.meets(level)) for level in LENIENT_LEVELS}

    def per_concept(self) -> dict[str, dict[str, Any]]:
        """Per concept: test outputs solved (each scored on its own, ConceptARC's protocol) and strict tasks."""
        table: dict[str, dict[str, Any]] = {}
        for t in self.tasks:
            if t.concept is None:
                continue
            row = table.setdefault(t.concept, {"tasks": 0, "strict_solved": 0, "outputs_solved": 0, "outputs_total": 0})
            row["tasks"] += 1
            row["strict_solved"] += t.solved
            row["outputs_solved"] += sum(o.correct_at is not None for o in t.outputs)
            row["outputs_total"] += len(t.outputs)
        for row in table.values():
            row["accuracy"] = row["outputs_solved"] / row["outputs_total"]
        return dict(sorted(table.items()))

    def to_dict(self) -> dict[str, Any]:
        exact = self.exact
        out: dict[str, Any] = {
            "name": self.name,
            "dataset": self.dataset,
            "family": "arc",
            "attempts": self.attempts,
            "attempts_given": self.attempts_given,
            "attempts_warning": self.attempts_warning,
            "tasks": len(self.tasks),
            "dataset_tasks": self.dataset_tasks,
            "scope": self.scope,
            "strict_solved": exact.strict_solved,
            "per_output_score": round(exact.per_output_score, 6),
            "outputs_solved": exact.outputs_solved,
            "outputs_total": self.outputs_total,
            "missing": len(self.missing),
            "malformed": len(self.malformed_files),
            "pass_at_k": {str(k): v.to_dict() for k, v in self.pass_at_k().items()},
            "lenient": {k: v.to_dict() for k, v in self.lenient().items()},
            "missing_tasks": self.missing,
            "unanswered_tasks": self.unanswered,
            "malformed_files": self.malformed_files,
            "unknown_tasks": self.unknown_tasks,
            "compute_per_problem": self.compute,
        }
        concepts = self.per_concept()
        if concepts:
            out["per_concept"] = concepts
        return out


@dataclass
class VisionScore:
    """A vision run: mean and standard deviation (n-1) of each metric over finished problems."""

    name: str
    family: str
    problems: int
    failed: list[str]
    metrics: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "problems": self.problems, "failed": len(self.failed),
                "failed_problems": self.failed, "metrics": self.metrics}


def rule_attempts(pset: PredictionSet, tasks: TaskSet) -> int:
    """The dataset's k (2 for ARC-AGI, 3 for ConceptARC); for a task folder, the k a run folder was made with, else 2."""
    from arcvdm.datasets import DATASETS

    if tasks.name in DATASETS:
        return DATASETS.get(tasks.name).attempts
    configured = ((pset.config or {}).get("selection") or {}).get("attempts")
    return configured if isinstance(configured, int) and configured >= 1 else 2


def score_tasks(pset: PredictionSet, tasks: TaskSet, attempts: int | None = None, only: Collection[str] | None = None) -> ArcScore:
    """Score `pset` on the tasks of `tasks`, or on those whose id is in `only` (scope "run").

    The headline counts `attempts` attempts (default: the dataset's k). Tasks without a test output are
    listed as unanswered, not scored.
    """
    if attempts is not None and attempts < 1:
        raise ArcvdmError(f"{pset.path}: --attempts {attempts}: give a positive number of attempts to count")
    k = attempts or rule_attempts(pset, tasks)
    made_on = f" (the run was made on {pset.dataset})" if pset.dataset and pset.dataset != tasks.name else ""
    if only and not any(task_id in tasks for task_id in only):
        example = next(iter(only))
        raise ArcvdmError(f"{pset.path}: none of the {len(only)} selected tasks (e.g. '{example}') is in {tasks.name}: "
                          f"check --dataset{made_on}")
    if pset.tasks and not any(task_id in tasks for task_id in pset.tasks):
        example = next(iter(pset.tasks))
        raise ArcvdmError(f"{pset.path}: none of its {len(pset.tasks)} tasks (e.g. '{example}') is in {tasks.name}: check --dataset{made_on}")
    wanted = None if only is None else set(only)
    results, malformed, unanswered = [], [], []
    for task in tasks:
        if wanted is not None and task.id not in wanted:
            continue
        if any(p.output is None for p in task.test):
            unanswered.append(task)
            continue
        pred = pset.tasks.get(task.id)
        result = score_task(task, pred, k)
        results.append(result)
        if result.status == "malformed" or (pred is not None and pred.issues):
            malformed.append({"file": pred.source, "reason": result.reason or pred.reason()})
    if unanswered and not results:
        task = unanswered[0]
        raise ArcvdmError(f"{task.source or tasks.name}: task {task.id} has no test output, nor has any task scored here: "
                          "score against a dataset with answers (--dataset)")
    unknown = sorted(set(pset.tasks) - set(tasks.ids()))
    return ArcScore(pset.name, tasks.name, k, results, malformed, unknown, compute_per_problem(pset, wanted),
                    dataset_tasks=len(tasks), scope="dataset" if wanted is None else "run",
                    attempts_given=pset.max_attempts(), unanswered=[t.id for t in unanswered],
                    attempts_from=f"--attempts {attempts}" if attempts else f"the rule of {tasks.name}")


def score_task(task: Task, pred: TaskPredictions | None, k: int) -> TaskScore:
    """One task (its test outputs given), counting its first `k` attempts; missing or malformed predictions score nothing."""
    wrong = [OutputScore() for _ in task.test]
    if pred is None:
        return TaskScore(task.id, task.concept, wrong, "missing")
    if pred.unusable:
        return TaskScore(task.id, task.concept, wrong, "malformed", pred.reason())
    if len(pred.entries) != len(task.test):
        reason = (f"{len(pred.entries)} entries but task {task.id} has {len(task.test)} test inputs "
                  "(one entry per test input, in order)")
        return TaskScore(task.id, task.concept, wrong, "malformed", reason)
    outputs = [OutputScore.of(entry, pair.output, k) for entry, pair in zip(pred.entries, task.test)]
    return TaskScore(task.id, task.concept, outputs)


def compute_per_problem(pset: PredictionSet, only: Collection[str] | None = None) -> dict[str, float]:
    """Mean training steps, sampler NFE, FLOPs and seconds per finished problem of a run folder (of `only` if given)."""
    done = [r for task_id, r in pset.records.items() if r.get("status") == "done" and (only is None or task_id in only)]
    out = {}
    for key in COMPUTE_FIELDS:
        values = [r[key] for r in done if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = statistics.fmean(values)
    seconds = [r["timings"]["total_s"] for r in done if isinstance((r.get("timings") or {}).get("total_s"), (int, float))]
    if seconds:
        out["total_s"] = statistics.fmean(seconds)
    return out


def score_vision(pset: PredictionSet) -> VisionScore:
    values: dict[str, list[float]] = {}
    failed = []
    for task_id, record in sorted(pset.records.items()):
        if record.get("status") != "done":
            failed.append(task_id)
            continue
        for name, value in (record.get("metrics") or {}).items():
            if isinstance(value, (int, float)):
                values.setdefault(name, []).append(float(value))
    done = len(pset.records) - len(failed)
    failed += sorted(task_id for task_id, t in pset.tasks.items() if t.unusable)  # a problem file that cannot be read
    metrics = {
        name: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
        for name, v in values.items()
    }
    return VisionScore(pset.name, pset.family, done, failed, metrics)


def score(pset: PredictionSet, tasks: TaskSet | None = None, attempts: int | None = None) -> ArcScore | VisionScore:
    """Vision run folders score on their own metrics; everything else needs the dataset's tasks.

    A run folder that recorded its selection is scored on it; other sets on the whole dataset.
    """
    if pset.family != "arc":
        return score_vision(pset)
    if tasks is None:
        raise ArcvdmError(f"{pset.path}: scoring ARC predictions needs the dataset: pass --dataset NAME_OR_PATH")
    return score_tasks(pset, tasks, attempts, pset.selected)


def load_answers(spec: str, data_dir: str | None = None) -> TaskSet:
    """The dataset to score against: a registered name (`arc-agi-1/evaluation`, `conceptarc`) or a path."""
    from arcvdm.datasets import load_dataset

    return load_dataset(spec, data_dir=data_dir)
