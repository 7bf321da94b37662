"""Hand-built run folders in the contract's layout for the scoring/report tests (imported by them; not a test file)."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from arcvdm.tasks import Task


def write_run(out: Path, tasks: list[Task], solved: set[str], failed: set[str] = frozenset(), dataset: str = "arc-agi-1/evaluation",
              images: bool = False, selection: list[str] | None = None) -> Path:
    """Tasks in `solved` get the answer as attempt_2 (attempt_1 wrong); others get wrong attempts; `failed` ones fail.

    `selection` is recorded as the run's selected task ids (config.json "tasks"); None writes an older run without it.
    """
    (out / "problems").mkdir(parents=True)
    config = {"family": "arc", "dataset": dataset, "backbone": "tiny"}
    if selection is not None:
        config["tasks"] = selection
    (out / "config.json").write_text(json.dumps(config))
    for n, task in enumerate(tasks):
        if task.id in failed:
            record = {"task_id": task.id, "family": "arc", "status": "failed: decode crashed", "concept": task.concept}
            (out / "problems" / f"{task.id}.json").write_text(json.dumps(record))
            continue
        wrong = [[(v + 1) % 10 for v in row] for row in task.test[0].output.root]
        answers = [p.output.root for p in task.test]
        test_preds = [answers[j] if task.id in solved else wrong for j in range(len(task.test))]
        checkpoints = [
            {"step": step,
             "train": [{"prediction": p.output.root, "correct": True, "error": None} for p in task.train],
             "test": [{"prediction": g, "error": None} for g in test_preds] if step == 20 else [{"prediction": None, "error": "decode: blank frame"} for _ in task.test]}
            for step in (10, 20)
        ]
        record = {
            "task_id": task.id, "family": "arc", "concept": task.concept, "status": "done", "layout": "centered",
            "output_size_from": "ground-truth", "checkpoints": checkpoints,
            "selection": {"rule": "paper", "k": 2, "solved_train_at": 10, "steps": [10, 20]},
            "attempts": [{"attempt_1": wrong, "attempt_2": g} for g in test_preds],
            "votes": [[{"grid": g, "count": 3, "identity_votes": 1, "last_step": 20},
                       {"grid": wrong, "count": 1, "identity_votes": 0, "last_step": 10}] for g in test_preds] if n == 0 else None,
            "train_steps_run": 20 + 10 * n, "train_steps_fixed": 40, "sampler_calls": 2, "nfe": 100, "forward_flops": 1e12 * (n + 1),
            "timings": {"setup_s": 0.1, "train_s": 1.0, "sample_s": 0.5, "total_s": 1.6 + n}, "peak_memory_bytes": 1, "seed": 0,
        }
        (out / "problems" / f"{task.id}.json").write_text(json.dumps(record))
        if images:
            folder = out / "problems" / task.id
            folder.mkdir()
            frames = [Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)) for i in range(3)]
            frames[0].save(folder / "train0.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)
            frames[2].save(folder / "step20-test0.png")
    return out
