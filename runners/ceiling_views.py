"""The ceiling of runners/mini_ceiling.py taken through `arcvdm run`, so that augmentation views train, sample and
vote exactly as in a run (docs/augmentation.md).

    python runners/ceiling_views.py write TASKS [--families symmetry,gravity,colour-permutation]
    arcvdm run TASKS --preset mini-aug --set train.steps=1000 --set train.eval_every=500 --out RUN
    python runners/ceiling_views.py summarise RUN TASKS

`write`: per family, the 60 pairs of mini_ceiling.py's ceiling (same stream) as one ARC task, 48 train pairs and
the 12 others as test inputs. `summarise`: per task and checkpoint, the test outputs exact in the untransformed view
(the ceiling's own count) and after a vote over that checkpoint's views, each with the mean share of cells right;
then the outputs exact among the run's final pass@2 attempts, and the forward passes.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mini_ceiling import TEST_PAIRS, TRAIN_PAIRS, ceiling_pairs

from arcvdm.augment import Transform
from arcvdm.pretrain.bench import write_tasks
from arcvdm.pretrain.generator import FAMILIES
from arcvdm.scoring import cell_accuracy
from arcvdm.tasks import Grid, Task, load_tasks
from arcvdm.voting import Candidate, vote

FAMILIES_WITH_VIEWS = ("symmetry", "gravity", "colour-permutation")


def ceiling_task(family: str) -> Task:
    pairs = ceiling_pairs(family)
    return Task(id=f"ceiling-{family}", train=pairs[:TRAIN_PAIRS], test=pairs[TRAIN_PAIRS:TRAIN_PAIRS + TEST_PAIRS])


def grid(rows) -> Grid | None:
    return None if rows is None else Grid.from_array(np.array(rows))


def exact_and_cells(predictions: list[Grid | None], answers: list[Grid]) -> tuple[int, float]:
    cells = [cell_accuracy(p, a) for p, a in zip(predictions, answers)]
    return sum(c == 1.0 for c in cells), round(float(np.mean(cells)), 3)


def summarise(problem: dict, task: Task) -> dict:
    answers = [p.output for p in task.test]
    rows = {}
    for record in problem["checkpoints"]:
        entries = record["test"]
        untransformed = [grid(e["prediction"]) for e in entries]
        voted = untransformed
        if "views" in entries[0]:
            voted = [vote([Candidate(grid(v["prediction"]), Transform.from_name(v["transform"]), record["step"], v["seed"])
                           for v in e["views"]], 1).attempts[0] for e in entries]
        exact, cells = exact_and_cells(untransformed, answers)
        voted_exact, voted_cells = exact_and_cells(voted, answers)
        rows[str(record["step"])] = {"untransformed": exact, "cells": cells, "voted": voted_exact,
                                     "voted_cells": voted_cells, "of": len(answers)}
    attempts = sum(any(grid(g) == a for g in entry.values()) for entry, a in zip(problem["attempts"], answers))
    return {"checkpoints": rows, "pass@2": attempts, "of": len(answers),
            "forward_passes": problem["forward_passes"]["total_forwards"], "training_videos": problem["training_videos"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="the ceiling tasks as ARC JSON files")
    write.add_argument("tasks", type=Path)
    write.add_argument("--families", default=",".join(FAMILIES_WITH_VIEWS), help="comma-separated")
    read = sub.add_parser("summarise", help="exact test outputs per checkpoint of an arcvdm run on those tasks")
    read.add_argument("run", type=Path)
    read.add_argument("tasks", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        families = [f for f in args.families.split(",") if f]
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            sys.exit(f"--families: unknown {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
        args.tasks.mkdir(parents=True, exist_ok=True)
        write_tasks(args.tasks, [ceiling_task(f) for f in families])
        return
    tasks = load_tasks(args.tasks)
    for task in tasks.tasks:
        path = args.run / "problems" / f"{task.id}.json"
        problem = json.loads(path.read_text()) if path.exists() else {}
        if problem.get("status") != "done":
            print(f"{task.id:32s} {problem.get('status', 'not run')}")
            continue
        s = summarise(problem, task)
        steps = "  ".join(f"step {k}: {r['untransformed']}/{r['of']} untransformed ({r['cells']:.0%} cells),"
                          f" {r['voted']}/{r['of']} voted ({r['voted_cells']:.0%})"
                          for k, r in s["checkpoints"].items())
        print(f"{task.id:32s} {steps}  pass@2 {s['pass@2']}/{s['of']}  {s['forward_passes']:,} forward passes,"
              f" {s['training_videos']} training videos")


if __name__ == "__main__":
    main()
