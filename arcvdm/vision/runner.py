"""A vision run: per seed, n shots -> transition videos -> one LoRA, evaluated every eval_every steps on held-out items.

Library entry point of `arcvdm vision run`. Writes the contract's run folder: one problem
`problems/<family>-n<shots>-seed<s>.json` per seed (resume skips finished ones), side-by-side
input / target / prediction PNGs under `problems/<task_id>/`, and `summary.json` with the seed average.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from arcvdm.augment import SYMMETRIES, Transform, picture_symmetries, picture_view, view_prompts
from arcvdm.config import RunConfig
from arcvdm.device import peak_memory_bytes, reset_peak_memory
from arcvdm.errors import ArcvdmError
from arcvdm.executors import failed_record
from arcvdm.io import atomic_write_json
from arcvdm.runner import prepare_run_folder, problem_status
from arcvdm.selection import schedule_steps
from arcvdm.vision.data import EVAL_SPLIT_SEED, Pool, open_data
from arcvdm.vision.families import FAMILIES, GRID_COLS, GRID_ROWS, Example, Family, side_by_side
from arcvdm.vision.items import Sample, mosaic
from arcvdm.voting import vote_pictures


def problem_id(family: str, shots: int, seed: int) -> str:
    return f"{family}-n{shots}-seed{seed}"


EVAL_STREAM, SHOTS_STREAM = 0, 1  # separate random streams, so seed s of the shots never mirrors the eval draw


def draw_items(family: Family, pool: Pool, count: int, seed: int, stream: int, height: int, width: int) -> list[Sample]:
    """`count` task items drawn without replacement from `pool`; a grid item tiles 16 distinct pictures, drawn
    afresh for each grid (the paper's 20 held-out pictures per class make fewer than 20 disjoint grids)."""
    rng = np.random.default_rng([stream, seed])
    if family.tiles == 1:
        if count > len(pool):
            raise ArcvdmError(f"{pool.name}: {len(pool)} items, need {count}: add data or lower --shots/--eval")
        return [pool.load(int(i)) for i in rng.choice(len(pool), count, replace=False)]
    if family.tiles > len(pool):
        raise ArcvdmError(f"{pool.name}: {len(pool)} pictures, a grid needs {family.tiles}: add data")
    grids = []
    for k in range(count):
        tiles = [pool.load(int(i)) for i in rng.choice(len(pool), family.tiles, replace=False)]
        grids.append(mosaic(tiles, GRID_ROWS, GRID_COLS, height, width, f"grid-{stream}-{seed}-{k}"))
    return grids


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN (a metric with nothing to measure) becomes null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}


# Families whose pairs a view would not keep meaningful (docs/augmentation.md lists the others' caveats).
NO_VIEWS = {"grid-classification": "its class symbols are drawn upright: a turned or mirrored symbol is no symbol "
                                   "the decoder knows"}


def picture_views(family: Family, config: RunConfig) -> list[int]:
    """The symmetries (indices into augment.SYMMETRIES) each shot is trained and each held-out item sampled under."""
    a, v = config.augment, config.video
    if a.color_maps > 1:
        raise ArcvdmError(f"augment.color_maps = {a.color_maps}: colour permutations are for ARC grids; a picture's "
                          "colours carry its meaning (a category mask's colours name the categories): set it to 1")
    if a.symmetries > 1 and family.name in NO_VIEWS:
        raise ArcvdmError(f"augment.symmetries = {a.symmetries}: views do not apply to {family.name} "
                          f"({NO_VIEWS[family.name]}): set it to 1")
    return picture_symmetries(a.symmetries, a.seed, v.height, v.width)


def solve_vision_problem(
    family: Family, train: list[Example], held_out: list[Example], config: RunConfig, backbone: Any, out_dir: Path,
    seed: int, progress: bool = False,
) -> dict[str, Any]:
    """Train one LoRA on the shots' transition videos; measure the held-out predictions at every checkpoint."""
    from arcvdm.flops import compute_record
    from arcvdm.render import save_gif, save_png
    from arcvdm.sample import predicted_frames
    from arcvdm.train import LoraTrainer
    from arcvdm.trajectories import make_video

    started = time.time()
    reset_peak_memory(backbone.device)  # this problem's peak, on a GPU
    v = config.video
    # Each shot under each view (augment.symmetries; shot-major), each view under its own prompt with
    # augment.view_prompts. One view: the shots alone, as the paper.
    symmetries = picture_views(family, config)
    prompt_of = view_prompts(config.prompt, [Transform(s) for s in symmetries]) if config.augment.view_prompts else {}
    videos, prompts = [], []
    for i, e in enumerate(train):
        for n, sym in enumerate(symmetries):
            videos.append(make_video(picture_view(e.input, sym), picture_view(e.target, sym), frames=v.frames,
                                     trajectory=v.trajectory, seed=seed * 1000 + i * len(symmetries) + n))
            prompts.append(prompt_of.get(Transform(sym), config.prompt))
    for i in range(len(train)):
        save_gif(videos[i * len(symmetries)], out_dir / f"train{i}.gif")
    # Each seed trains from its own LoRA initialisation and noise as well as its own shots.
    config = config.model_copy(update={"train": config.train.model_copy(update={"seed": config.train.seed + seed})})
    trainer = LoraTrainer(backbone, videos, config, progress, prompts=prompts)
    # augment.views inference views (the training ones, cycled), each mapped back; their pixel mean is the prediction
    views = [symmetries[n % len(symmetries)] for n in range(config.augment.views)]
    first_frames = [picture_view(e.input, sym) for sym in views for e in held_out]
    frame_prompts = [prompt_of.get(Transform(sym), config.prompt) for sym in views for _ in held_out]
    setup_s, train_s, sample_s = time.time() - started, 0.0, 0.0

    checkpoints = []
    for step in schedule_steps(config.train.steps, config.train.eval_every):
        t = time.time()
        losses = trainer.train(step - trainer.step, progress=progress)
        train_s += time.time() - t
        t = time.time()
        seen = predicted_frames(backbone, first_frames, config, prompts=frame_prompts)
        predictions = [vote_pictures([picture_view(seen[n * len(held_out) + j], sym, inverse=True)
                                      for n, sym in enumerate(views)]) for j in range(len(held_out))]
        sample_s += time.time() - t
        images = []
        for j, (e, p) in enumerate(zip(held_out, predictions)):
            save_png(side_by_side(e.input, e.target, p), out_dir / f"step{step}-eval{j}.png")
            images.append(f"{out_dir.name}/step{step}-eval{j}.png")
        metrics = _finite(family.evaluate(predictions, held_out))
        checkpoints.append({"step": step, "loss": float(np.mean(losses)) if losses else None, "metrics": metrics, "images": images})

    per_forward = backbone.forward_flops(v.frames, v.height, v.width)
    return {
        "metrics": checkpoints[-1]["metrics"],
        "primary_metric": family.primary,
        "checkpoints": checkpoints,
        "selection": {"rule": "final", "step": checkpoints[-1]["step"]},
        "train_steps_run": trainer.step,
        "train_steps_fixed": config.train.steps,
        **compute_record(trainer.step, len(checkpoints) * len(first_frames), config, per_forward),
        **({"views": [SYMMETRIES[sym] for sym in views]} if len(views) > 1 else {}),
        "timings": {"setup_s": round(setup_s, 3), "train_s": round(train_s, 3), "sample_s": round(sample_s, 3),
                    "total_s": round(time.time() - started, 3)},
        "peak_memory_bytes": peak_memory_bytes(backbone.device),
    }


def run_vision(
    family_name: str, data: str, shots: int, config: RunConfig, out: str | Path, *, seeds: Sequence[int] = (0, 1, 2),
    eval_count: int = 20, resume: bool = True, categories: Sequence[str] = ("dog",), classes: Sequence[str] | None = None,
    images: Path | None = None, backbone: Any = None, progress: bool = False, log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every seed of (family, shots) on `data` into the run folder `out`; returns the summary it writes."""
    from arcvdm.backbones import check_config

    check_config(config)  # the backbone's shape rules, once, before any data or model loads
    family = FAMILIES.get(family_name)
    if shots < 1 or eval_count < 1:
        raise ArcvdmError(f"--shots {shots}, --eval {eval_count}: both must be at least 1")
    out, started = Path(out), time.time()
    v = config.video
    summary: dict[str, Any] = {"family": family.name, "dataset": data, "shots": shots, "seeds": list(seeds),
                               "eval_items": eval_count, "problems": len(seeds), "done": 0, "failed": 0, "skipped": 0,
                               "failures": {}}
    pending = [seed for seed in seeds if not (resume and problem_status(out / "problems" / f"{problem_id(family.name, shots, seed)}.json") == "done")]
    if pending:  # bad data is one error before anything is written; a finished run reads nothing
        train_pool, eval_pool = open_data(data, family, eval_count=eval_count, height=v.height, width=v.width,
                                          categories=categories, classes=classes, images=images)
        held_items = draw_items(family, eval_pool, eval_count, EVAL_SPLIT_SEED, EVAL_STREAM, v.height, v.width)
        held_out = [family.make_example(s, v.height, v.width) for s in held_items]
    # One folder = one (family, shots) setting: the scorer averages every problem in it. Checked before the
    # backbone loads, which can take minutes.
    prepare_run_folder(out, config, data, resume, settings={"vision": {"shots": shots, "eval_items": eval_count}})
    if pending and backbone is None:
        from arcvdm.backbones import load_backbone

        backbone = load_backbone(config.backbone, config.device, config.dtype)
    records = []
    for seed in seeds:
        task_id = problem_id(family.name, shots, seed)
        path = out / "problems" / f"{task_id}.json"
        if seed not in pending:
            summary["skipped"] += 1
            records.append(json.loads(path.read_text()))
            continue
        path.unlink(missing_ok=True)
        shutil.rmtree(out / "problems" / task_id, ignore_errors=True)
        record = {"task_id": task_id, "family": family.name, "concept": None, "dataset": data, "shots": shots, "seed": seed,
                  "eval_items": [e.sample.id for e in held_out]}
        try:
            shots_items = draw_items(family, train_pool, shots, seed, SHOTS_STREAM, v.height, v.width)
            train = [family.make_example(s, v.height, v.width) for s in shots_items]
            record["train_items"] = [s.id for s in shots_items]
            log(f"{task_id}: {shots} shot{'s' if shots != 1 else ''}, {eval_count} held-out item{'s' if eval_count != 1 else ''}, "
                f"{config.train.steps} steps on {backbone.name}")
            record = {**record, "status": "done",
                      **solve_vision_problem(family, train, held_out, config, backbone, out / "problems" / task_id, seed, progress)}
            log(f"{task_id}: " + ", ".join(f"{k} {_fmt(x)}" for k, x in record["metrics"].items() if not isinstance(x, list)))
        except Exception as e:  # a bad problem never stops the run: its reason is recorded, on one line
            failed = failed_record(task_id, e, config)
            record.update(status=failed["status"], traceback=failed["traceback"])
            log(f"{task_id}: {record['status']}")
        atomic_write_json(path, record)
        records.append(record)

    for r in records:
        if r.get("status") == "done":
            summary["done"] += 1
        else:
            summary["failed"] += 1
            summary["failures"][r["task_id"]] = r.get("status")
    summary["metrics"] = average_metrics(records)
    summary["elapsed_s"] = round(time.time() - started, 2)
    summary["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(out / "summary.json", summary)
    return summary


def average_metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (n-1) over seeds of each numeric metric of the finished problems."""
    values: dict[str, list[float]] = {}
    for r in records:
        if r.get("status") == "done":
            for name, x in (r.get("metrics") or {}).items():
                if isinstance(x, (int, float)):
                    values.setdefault(name, []).append(float(x))
    return {k: {"mean": statistics.fmean(x), "std": statistics.stdev(x) if len(x) > 1 else 0.0, "n": len(x)} for k, x in values.items()}


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)
