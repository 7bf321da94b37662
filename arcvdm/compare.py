"""Several scored prediction sets side by side: metrics, published reference rows and per-problem overlap."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from arcvdm.baselines import PUBLISHED, Reference, references_for
from arcvdm.errors import ArcvdmError
from arcvdm.formats import PredictionSet
from arcvdm.scoring import ArcScore, VisionScore


@dataclass
class Overlap:
    """Strictly solved problems of two sets: by A only, by B only, by both."""

    a: str
    b: str
    a_only: list[str]
    b_only: list[str]
    both: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "a_only": len(self.a_only), "b_only": len(self.b_only), "both": len(self.both),
                "a_only_tasks": self.a_only, "b_only_tasks": self.b_only, "both_tasks": self.both}


@dataclass
class Comparison:
    dataset: str
    scores: list[ArcScore | VisionScore]
    references: list[Reference] = field(default_factory=list)
    concept_references: dict[str, dict[str, float]] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)
    unique: dict[str, list[str]] = field(default_factory=dict)  # set name → problems no other set solves
    selection: list[str] | None = None  # the task ids compared on (shared_selection); None = the whole dataset
    dataset_tasks: int = 0

    @property
    def scope(self) -> str:
        return "dataset" if self.selection is None else "run"

    def scope_caption(self) -> str:
        if self.selection is None:
            return f"compared on all {self.dataset_tasks} tasks of {self.dataset}"
        return (f"compared on the {len(self.selection)} of {self.dataset_tasks} tasks that every run folder selected "
                "(the intersection of the runs' selections; --all-tasks compares on all, unselected tasks missing)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "scope": self.scope,
            "dataset_tasks": self.dataset_tasks,
            "tasks_compared": self.dataset_tasks if self.selection is None else len(self.selection),
            "sets": [s.to_dict() for s in self.scores],
            "references": [{**r.__dict__, "kind": PUBLISHED} for r in self.references],
            "concept_references": self.concept_references,
            "overlap": [o.to_dict() for o in self.overlaps],
            "unique": {name: len(ids) for name, ids in self.unique.items()},
        }


def shared_selection(psets: list[PredictionSet], all_tasks: bool = False) -> list[str] | None:
    """The tasks every ARC run folder selected (in the first run's order), or None for the whole dataset.

    The intersection, not the union: a union would count a task one run never attempted as that run's miss,
    the very distortion scoring on the selection avoids. Sets that are not run folders predict the whole
    dataset, so they are compared on the same tasks.
    """
    runs = [p for p in psets if p.family == "arc" and p.selected is not None]
    if all_tasks or not runs:
        return None
    common = set(runs[0].selected).intersection(*(p.selected for p in runs[1:]))
    if not common:
        raise ArcvdmError(f"the runs {', '.join(p.name for p in runs)} selected no task in common: "
                          "compare runs over the same tasks, or pass --all-tasks to compare on the whole dataset")
    return [t for t in runs[0].selected if t in common]


def compare(scores: list[ArcScore | VisionScore], dataset: str, selection: list[str] | None = None) -> Comparison:
    """Side by side; `selection` = the task ids the scores were computed on (shared_selection), None = all."""
    references, concept_references = references_for(dataset)
    arc = [s for s in scores if isinstance(s, ArcScore)]
    solved = {s.name: s.solved_ids() for s in arc}
    overlaps = [
        Overlap(a.name, b.name, sorted(solved[a.name] - solved[b.name]), sorted(solved[b.name] - solved[a.name]),
                sorted(solved[a.name] & solved[b.name]))
        for a, b in combinations(arc, 2)
    ]
    unique = {}
    if len(arc) > 1:
        for s in arc:
            others = set().union(*(solved[o.name] for o in arc if o is not s))
            unique[s.name] = sorted(solved[s.name] - others)
    return Comparison(dataset, scores, references, concept_references if any(s.per_concept() for s in arc) else {}, overlaps, unique,
                      selection, max((s.dataset_tasks for s in arc), default=0))
