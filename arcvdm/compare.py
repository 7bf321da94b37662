"""Several scored prediction sets side by side: metrics, published reference rows and per-problem overlap."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from arcvdm.baselines import PUBLISHED, Reference, references_for
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "sets": [s.to_dict() for s in self.scores],
            "references": [{**r.__dict__, "kind": PUBLISHED} for r in self.references],
            "concept_references": self.concept_references,
            "overlap": [o.to_dict() for o in self.overlaps],
            "unique": {name: len(ids) for name, ids in self.unique.items()},
        }


def compare(scores: list[ArcScore | VisionScore], dataset: str) -> Comparison:
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
    return Comparison(dataset, scores, references, concept_references if any(s.per_concept() for s in arc) else {}, overlaps, unique)
