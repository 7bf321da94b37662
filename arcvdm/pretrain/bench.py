"""`arcvdm mini-bench`: generated tasks from the families inside and outside pretraining, solved by `arcvdm run`'s
runner and scored strictly, side by side. The task stream is seeded apart from every pretraining stream."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from arcvdm.config import RunConfig
from arcvdm.errors import ArcvdmError
from arcvdm.io import atomic_write_json
from arcvdm.pretrain.data import stream_rng
from arcvdm.pretrain.determinacy import determined
from arcvdm.pretrain.generator import FAMILIES, OUTSIDE, make_task
from arcvdm.selection import Checkpoint, decided, schedule_steps
from arcvdm.tasks import Task


def bench_tasks(n: int, seed: int) -> list[Task]:
    """`n` tasks cycling through every family; task i has 2-4 train pairs and 1-2 test inputs."""
    names = sorted(FAMILIES)
    tasks = []
    for i in range(n):
        rng = stream_rng("bench", seed, i)
        name = names[i % len(names)]
        tasks.append(make_task(name, rng, f"{name}-{i:04d}", train=rng.randint(2, 4), test=rng.randint(1, 2)))
    return tasks


def write_tasks(folder: Path, tasks: list[Task]) -> None:
    """One JSON per task; an existing folder must hold exactly these tasks (a rerun resumes, it never mixes benches)."""
    for task in tasks:
        path = folder / f"{task.id}.json"
        data = task.to_dict()
        if path.exists():
            if json.loads(path.read_text()) != data:
                raise ArcvdmError(f"{path}: differs from the task this seed generates; use a new --out for another --seed")
            continue
        atomic_write_json(path, data)


def family_of(task_id: str) -> str:
    return task_id.rsplit("-", 1)[0]


def shows_unseen_colour(task: Task, j: int) -> bool:
    """Whether test input j shows a colour that none of the task's train inputs shows (no adapter has seen it)."""
    shown = {int(c) for p in task.train for c in np.unique(p.input.array)}
    return bool({int(c) for c in np.unique(task.test[j].input.array)} - shown)


def early_stop_step(record: dict, eval_every: int) -> int:
    """The step at which early stopping stops this problem, or would have in a run without it: the first of its
    recorded checkpoints at which `selection.decided` holds, read back from the problem file."""
    k, rule = record["selection"]["k"], record["selection"]["rule"]
    schedule = schedule_steps(record["train_steps_fixed"], eval_every)
    checkpoints = []
    for c in record["checkpoints"]:
        checkpoints.append(Checkpoint(c["step"], tuple(e["correct"] for e in c["train"]), (), c.get("held_out")))
        if decided(checkpoints, schedule, k, rule):
            return c["step"]
    return record["train_steps_run"]


def kept_and_changed_cells(tasks: list[Task], predictions, k: int) -> tuple[list[int], list[int]]:
    """Over the test outputs of `tasks` whose input has their shape, the cells right in the best of the `k` counted
    attempts (most cells right) among those the rule keeps and those it changes, each [right, of]: whether the near
    misses miss the rule or the drawing of what it leaves alone."""
    from arcvdm.scoring import cell_accuracy, kept_and_changed

    kept, changed = np.zeros(2, int), np.zeros(2, int)
    for task in tasks:
        found = predictions.tasks.get(task.id)
        entries = found.entries if found is not None and not found.unusable else []
        for j, pair in enumerate(task.test):
            attempts = entries[j][:k] if j < len(entries) else []
            best = max(attempts, key=lambda grid: cell_accuracy(grid, pair.output), default=None)
            split = kept_and_changed(best, pair.output, pair.input)
            if split:
                kept, changed = kept + split[0], changed + split[1]
    return kept.tolist(), changed.tolist()


def run_bench(out: str | Path, config: RunConfig, n: int, seed: int, log=print) -> dict:
    from arcvdm.flops import planned_forward_passes
    from arcvdm.formats import load_predictions
    from arcvdm.runner import read_record, run_dataset
    from arcvdm.scoring import score_tasks
    from arcvdm.tasks import TaskSet

    out = Path(out)
    tasks = bench_tasks(n, seed)
    write_tasks(out / "tasks", tasks)
    run_dataset(str(out / "tasks"), config, out / "run", log=log)
    predictions = load_predictions(out / "run")
    scored = score_tasks(predictions, TaskSet("mini-bench", tasks), config.selection.attempts)
    by_id = {t.id: t for t in tasks}
    fixed = {t.id for t in tasks if determined(t)}
    records = {t.task_id: read_record(out / "run" / "problems" / f"{t.task_id}.json") or {} for t in scored.tasks}
    result: dict = {"seed": seed, "tasks": n, "attempts": config.selection.attempts, "preset": config.preset,
                    "backbone": config.backbone, "families": {}}
    for side, keep in (("inside", lambda f: f not in OUTSIDE), ("outside", lambda f: f in OUTSIDE), ("all", lambda f: True)):
        rows = [t for t in scored.tasks if keep(family_of(t.task_id))]
        done_ids = [t.task_id for t in rows if records[t.task_id].get("status") == "done"]
        done = [records[i] for i in done_ids]
        solved = sum(t.solved for t in rows)
        outputs = [(o, shows_unseen_colour(by_id[t.task_id], j))
                   for t in rows for j, o in enumerate(t.outputs)]
        result[side] = {
            "tasks": len(rows), "solved": solved, "rate": round(solved / len(rows), 4) if rows else 0.0,
            # what a solver that knew the family could reach: the train pairs fix the test outputs
            "determined": sum(t.task_id in fixed for t in rows),
            "test_outputs": len(outputs), "test_outputs_exact": sum(o.meets("exact") for o, _ in outputs),
            # near misses: the best counted attempt has the output's shape and at least 90% / 75% of its cells right
            "test_outputs_cells_90": sum(o.meets("cells>=90%") for o, _ in outputs),
            "test_outputs_cells_75": sum(o.meets("cells>=75%") for o, _ in outputs),
            # [right, of] cells of the best attempts: those the rule keeps, those it changes (same-shape outputs)
            **dict(zip(("test_cells_kept", "test_cells_changed"),
                       kept_and_changed_cells([by_id[t.task_id] for t in rows], predictions, config.selection.attempts))),
            # test inputs showing a colour no train input of their task shows, and how many of those came back exact
            "unseen_colour_outputs": sum(unseen for _, unseen in outputs),
            "unseen_colour_exact": sum(o.meets("exact") and unseen for o, unseen in outputs),
            # the chain works when every train pair comes back exactly at some checkpoint
            "train_memorised": sum(any(all(e["correct"] for e in c.get("train", [])) for c in r["checkpoints"]) for r in done),
            "forward_passes": sum(r["forward_passes"]["total_forwards"] for r in done),
            # the fixed schedule's count for the same problems: what early stopping saved, at identical attempts
            "forward_passes_fixed": sum(planned_forward_passes(config, len(by_id[i].train), len(by_id[i].test)).total
                                        for i in done_ids),
            # and with early stopping, read from the checkpoints: what it saves even in a run without it
            "forward_passes_early_stop": sum(planned_forward_passes(
                config, len(by_id[i].train), len(by_id[i].test), early_stop_step(records[i], config.train.eval_every)
            ).total for i in done_ids),
            "median_seconds_per_problem": round(statistics.median(r["timings"]["total_s"] for r in done), 2) if done else None,
        }
    for name in sorted(FAMILIES):
        rows = [t for t in scored.tasks if family_of(t.task_id) == name]
        result["families"][name] = {"side": "outside" if name in OUTSIDE else "inside", "tasks": len(rows),
                                    "determined": sum(t.task_id in fixed for t in rows),
                                    "solved": sum(t.solved for t in rows)}
    atomic_write_json(out / "bench.json", result)
    return result
