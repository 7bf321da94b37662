"""Which checkpoints' predictions become the k attempts: the paper's rule (appendix A.4.2), made exact, and leave-one-out.

The paper evaluates a fixed schedule of checkpoints and says: at the first checkpoint whose training
predictions are correct, use its test prediction and those of the next k-1 checkpoints as the k
attempts (k = 2 for ARC-AGI, 3 for ConceptARC); if no checkpoint gets the training set right, use the
last predictions. Everything below follows from one ordering of the checkpoints, the *priority list*:

* paper rule: let `start` be the first checkpoint where every train pair is predicted exactly, or,
  if there is none, `n - k` (so the fallback is the last k checkpoints). The priority list is
  `start, start+1, ..., start+k-1` (cut at the last checkpoint), then `start-1, start-2, ..., 0`.
  So when fewer than k checkpoints remain after the solving one, the window is completed with the
  checkpoints just *before* it, nearest first: the k-checkpoint window slides back to end at the last
  checkpoint, exactly like the fallback. We fill backwards, not by repeating the last checkpoint,
  because a repeat can only duplicate an attempt, and not with later checkpoints because none exist.
* leave-one-out rule (two or more train pairs; with one the solver applies the paper rule): the
  training chunk before checkpoint c (0-based) leaves out every video of train pair `c mod N`, so the
  held-out pair rotates by checkpoint; the signal at c is exact success on that pair. We rotate within
  one LoRA rather than train one LoRA per fold because folds cost N trainings per problem; the price
  is that the held-out pair was seen in earlier chunks, so the signal means "still right after a
  chunk without it", weaker than a true hold-out. At the first checkpoint `c` where the signal holds
  at both `c-1` and `c`, the priority list is `c-1, c, c-2, c-3, ..., 0` and training stops at `c`
  (for k = 3 the third attempt comes from before the pair). Without two consecutive successes it
  falls back to the paper's last k checkpoints.

Attempts, per test input: walk the priority list and take the first k *distinct, decodable*
predictions (`distinct=True`, the default). A duplicate or undecodable prediction inside the window
is thus replaced by the next distinct prediction from earlier checkpoints; never from later ones, so
the attempts are known as soon as the window is complete and early stopping changes nothing. This
can only add correct answers compared with the literal rule (its distinct grids are a subset of
ours). If fewer than k distinct predictions exist, the remaining attempts are None. With
`distinct=False` the attempts are the predictions of the first k checkpoints of the list, duplicates
and None included (the literal reading).

With inference views (augment.views > 1, arcvdm/solver.py) the attempts are instead the k most voted grids
over every view of the window's checkpoints (arcvdm/voting.py); slots the vote leaves empty take the
distinct attempts above that it does not already have. The window is the same, so is the stopping point.

`decided(checkpoints, schedule, k)` is true exactly when no later checkpoint can change the attempts:
the triggering checkpoint has been seen and its window is complete, or the schedule is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from arcvdm.tasks import Grid

Rule = Literal["paper", "leave-one-out"]
RULES: tuple[str, ...] = ("paper", "leave-one-out")


@dataclass(frozen=True)
class Checkpoint:
    """What selection needs from one evaluation: which train pairs were exact, the test predictions (None = undecodable)."""

    step: int
    train_correct: tuple[bool, ...]
    test: tuple[Grid | None, ...]
    held_out: int | None = None  # train pair left out of the chunk before this checkpoint (leave-one-out)

    @property
    def solves_train(self) -> bool:
        return bool(self.train_correct) and all(self.train_correct)

    @property
    def solves_held_out(self) -> bool:
        return self.held_out is not None and self.train_correct[self.held_out]


@dataclass(frozen=True)
class Selection:
    rule: str
    k: int
    triggered_at: int | None  # step of the checkpoint that fired the rule (None = fallback to the last k)
    solved_train_at: int | None  # first step with every train pair exact (the paper's signal, for any rule)
    order: tuple[int, ...]  # the priority list, as indices into the checkpoints
    steps: tuple[int, ...]  # steps of the window (the first k checkpoints of the priority list)
    attempts: list[list[Grid | None]] = field(default_factory=list)  # per test input, k attempts
    attempt_steps: list[list[int | None]] = field(default_factory=list)  # the step each attempt came from

    def to_json(self) -> dict:
        """The problem file's `selection` entry."""
        out = {"rule": self.rule, "k": self.k, "solved_train_at": self.solved_train_at}
        if self.rule == "leave-one-out":
            out["solved_held_out_at"] = self.triggered_at
        return {**out, "steps": list(self.steps), "attempt_steps": self.attempt_steps}


def trigger(checkpoints: Sequence[Checkpoint], rule: Rule = "paper") -> int | None:
    """Index of the checkpoint that fires the rule, or None if none has yet."""
    for i, c in enumerate(checkpoints):
        if rule == "paper" and c.solves_train:
            return i
        if rule == "leave-one-out" and i > 0 and c.solves_held_out and checkpoints[i - 1].solves_held_out:
            return i
    return None


def priority(n: int, k: int, trigger_index: int | None, rule: Rule = "paper") -> list[int]:
    """The order in which the first n checkpoints supply attempts (see the module docstring)."""
    if trigger_index is not None and rule == "leave-one-out":
        c = trigger_index
        return [c - 1, c, *range(c - 2, -1, -1)]
    start = trigger_index if trigger_index is not None else max(n - k, 0)
    end = min(start + k, n)
    return [*range(start, end), *range(start - 1, -1, -1)]


def select(checkpoints: Sequence[Checkpoint], k: int, rule: Rule = "paper", distinct: bool = True) -> Selection:
    """Apply the rule to the checkpoints evaluated so far (all of them, or a prefix for which `decided` holds)."""
    _check(k, rule)
    if not checkpoints:
        raise ValueError("select: no checkpoints were evaluated")
    t = trigger(checkpoints, rule)
    order = priority(len(checkpoints), k, t, rule)
    window = order[:k]
    attempts, sources = [], []
    for j in range(len(checkpoints[0].test)):
        if distinct:
            picked: list[tuple[Grid | None, int | None]] = []
            for i in order:
                grid = checkpoints[i].test[j]
                if grid is not None and all(grid != g for g, _ in picked):
                    picked.append((grid, checkpoints[i].step))
                if len(picked) == k:
                    break
        else:
            picked = [(checkpoints[i].test[j], checkpoints[i].step) for i in window]
        picked += [(None, None)] * (k - len(picked))
        attempts.append([g for g, _ in picked])
        sources.append([s for _, s in picked])
    solved = trigger(checkpoints, "paper")
    return Selection(
        rule=rule,
        k=k,
        triggered_at=None if t is None else checkpoints[t].step,
        solved_train_at=None if solved is None else checkpoints[solved].step,
        order=tuple(order),
        steps=tuple(checkpoints[i].step for i in window),
        attempts=attempts,
        attempt_steps=sources,
    )


def decided(checkpoints: Sequence[Checkpoint], schedule: Sequence[int], k: int, rule: Rule = "paper") -> bool:
    """True as soon as no checkpoint after these can change the attempts, so training may stop here.

    `schedule` is the fixed schedule's evaluation steps; `checkpoints` its first len(checkpoints) evaluations.
    """
    _check(k, rule)
    if len(checkpoints) >= len(schedule):
        return True
    t = trigger(checkpoints, rule)
    if t is None:
        return False  # a later checkpoint may still fire the rule, and the fallback needs the last ones
    if rule == "leave-one-out":
        return True  # the priority list only looks backwards from the trigger
    last_needed = min(t + k, len(schedule)) - 1
    return len(checkpoints) > last_needed


def schedule_steps(steps: int, eval_every: int) -> list[int]:
    """Evaluation steps of a fixed schedule: every `eval_every` steps, and always the last step."""
    if steps < 1 or eval_every < 1:
        raise ValueError(f"schedule: train.steps ({steps}) and train.eval_every ({eval_every}) must be positive")
    out = list(range(eval_every, steps + 1, eval_every))
    return out if out and out[-1] == steps else [*out, steps]


def _check(k: int, rule: str) -> None:
    if k < 1:
        raise ValueError(f"selection: attempts k = {k} must be at least 1")
    if rule not in RULES:
        raise ValueError(f"selection: unknown rule {rule!r}; one of {', '.join(RULES)}")
