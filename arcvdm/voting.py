"""Voting over whole decoded grids from several views (transforms, sampler seeds, checkpoints) of one test input,
and over the mapped-back pictures of one held-out vision item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arcvdm.augment import Transform
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid


@dataclass(frozen=True)
class Candidate:
    """One decoded prediction, already mapped back to the task's orientation and colours; `transform`: the view it
    was sampled under (arcvdm/solver.py leaves out a familiar colour map, which every view of that test input
    shares); `grid` None = undecodable (never wins)."""

    grid: Grid | None
    transform: Transform
    step: int
    seed: int


@dataclass(frozen=True)
class VoteResult:
    """`attempts`: exactly k entries, the k most voted grids, then None when fewer distinct grids were decoded.

    `counts`: one entry per distinct grid in rank order, JSON-ready for the problem file's `votes` field:
    {"grid": [[...]], "count": n, "identity_votes": m, "last_step": s}.
    `undecodable`: how many candidates had no grid.
    """

    attempts: list[Grid | None]
    counts: list[dict[str, Any]]
    undecodable: int


def vote(candidates: list[Candidate], k: int) -> VoteResult:
    """Rank distinct grids by votes; ties go to more votes from the untransformed view, then to the grid
    seen at the later checkpoint, then to the grid seen first in `candidates`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ArcvdmError(f"vote: k = {k!r} attempts, must be a positive integer")
    tally: dict[Grid, dict[str, Any]] = {}
    undecodable = 0
    for order, c in enumerate(candidates):
        if c.grid is None:
            undecodable += 1
            continue
        entry = tally.setdefault(c.grid, {"count": 0, "identity_votes": 0, "last_step": c.step, "first_seen": order})
        entry["count"] += 1
        entry["identity_votes"] += int(c.transform.is_identity)
        entry["last_step"] = max(entry["last_step"], c.step)
    ranked = sorted(
        tally.items(), key=lambda kv: (-kv[1]["count"], -kv[1]["identity_votes"], -kv[1]["last_step"], kv[1]["first_seen"])
    )
    attempts: list[Grid | None] = [grid for grid, _ in ranked[:k]]
    attempts += [None] * (k - len(attempts))
    counts = [
        {"grid": grid.root, "count": e["count"], "identity_votes": e["identity_votes"], "last_step": e["last_step"]}
        for grid, e in ranked
    ]
    return VoteResult(attempts=attempts, counts=counts, undecodable=undecodable)


def vote_pictures(pictures: list[np.ndarray]) -> np.ndarray:
    """One uint8 picture from several views of one held-out item, each already mapped back: the rounded pixel mean
    (for a white-on-black mask thresholded at mid-grey, the pixel-wise majority). One view: that picture itself."""
    if len(pictures) == 1:
        return pictures[0]
    return np.round(np.mean(np.stack(pictures).astype(np.float32), axis=0)).astype(np.uint8)
