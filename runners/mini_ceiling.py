"""Where the mini's limit lies (docs/mini.md): two measurements that need no LoRA selection.

    python runners/mini_ceiling.py OUT [--backbone mini] [--families a,b] [--steps 500,1000] [--set KEY=VALUE]
                                       [--copy-sides 3,5,7,9] [--pairs 48]

The canvas and layout are the preset's (`--set video.height=80 --set video.width=80 --set codec.layout=token-aligned`
for cells on the backbone's token grid); `--families ''` runs the copy test alone.

1. Copy: the backbone without an adapter generates from random grids of one side (density 0.6); how often frame 2,
   which in a `discrete` video still shows the input, decodes back to that input exactly.
2. Ceiling: per family (inside pretraining, then outside), one task (one hidden rule) with 60 pairs; the `mini`
   preset's LoRA trains on the transition videos of 48 of them and predicts the 12 others (and up to 12 of its own)
   at each of --steps. Each row says how many of the 12 the train pairs fix at all (a colour permutation fixes only
   the colours they show), and how many show a colour no train input shows. A few-shot run sees 2-4 pairs and 200
   steps, far less than this; `--pairs 4` trains on the first 4 of the 48 alone (the same 12 fresh inputs), the
   few-shot regime with this protocol. Rank 128 on the mini's 128-wide layers is full rank: this is about as far as
   tuning every attention and feed-forward weight gets.

Results go to OUT/ceiling.json, one entry at a time (atomic); a rerun skips the entries it holds, and refuses an OUT
made with another --backbone, --steps, --set or --pairs. Each family's entry splits the cells of outputs that keep
the input's shape into those the rule keeps and those it changes, and counts the colours drawn wrong, so a miss reads
as the drawing's precision or as the rule; OUT/FAMILY.png shows its fresh inputs, truths, predictions at the last
step and their missed cells (red).
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from arcvdm import codec
from arcvdm.backbones import check_config, largest_canvas, load_backbone
from arcvdm.cli.run import parse_set
from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.io import atomic_write_json, read_json
from arcvdm.pretrain.bench import shows_unseen_colour
from arcvdm.pretrain.data import stream_rng
from arcvdm.pretrain.determinacy import determined
from arcvdm.pretrain.generator import FAMILIES, INSIDE, OUTSIDE, make_task, noise_grid
from arcvdm.sample import generate, predicted_frames
from arcvdm.render import save_png
from arcvdm.report.images import diff_image, grid_image
from arcvdm.scoring import cell_accuracy, kept_and_changed
from arcvdm.tasks import Grid, Pair, Task
from arcvdm.train import LoraTrainer
from arcvdm.trajectories import make_video
from arcvdm.vision.families import side_by_side

TRAIN_PAIRS, TEST_PAIRS = 48, 12
COPY_SIDES, COPY_GRIDS = (3, 5, 7, 9), 16


def outcome(grids: list[Grid | None], pairs: list[Pair]) -> dict:
    """Outputs decoded exactly and the mean share of cells right (the size given, as runs decode `centered`); where
    the input has the output's shape, the cells right among those the rule keeps and those it changes (`kept`,
    `changed`: [right, of]: a miss on a kept cell is precision, on a changed one the rule), and the colours drawn in
    place of the truth's (`confused`, "truth>drawn": cells)."""
    cells = [cell_accuracy(grid, pair.output) for grid, pair in zip(grids, pairs)]
    result = {"exact": sum(c == 1.0 for c in cells), "of": len(pairs), "cells": round(float(np.mean(cells)), 3)}
    splits = [s for s in (kept_and_changed(g, p.output, p.input) for g, p in zip(grids, pairs)) if s]
    if splits:
        result["kept"], result["changed"] = (np.sum(part, axis=0).tolist() for part in zip(*splits))
    confused = Counter()
    for grid, pair in zip(grids, pairs):
        if grid is not None and grid.shape == pair.output.shape:
            wrong = grid.array != pair.output.array
            confused.update(f"{t}>{d}" for t, d in zip(pair.output.array[wrong], grid.array[wrong]))
    return {**result, "confused": dict(confused.most_common())}


def split_words(counts: dict) -> str:
    """", kept 99%, changed 80%" of an outcome that has the split (entries written before it have none)."""
    return "".join(f", {k} {counts[k][0] / counts[k][1]:.0%}" for k in ("kept", "changed") if counts.get(k, [0, 0])[1])


def sheet(grids: list[Grid | None], pairs: list[Pair]) -> np.ndarray:
    """One row per pair: input, truth, the decoded prediction and the cells it misses (red), on white."""
    rows = []
    for grid, pair in zip(grids, pairs):
        drawn = [] if grid is None else [grid_image(grid), diff_image(grid, pair.output)]
        pictures = [grid_image(pair.input), grid_image(pair.output), *drawn]
        rows.append(side_by_side(*[p for p in pictures if p is not None], gap=8))  # no diff for another shape
    # side_by_side lays pictures in a row: on the transposed rows it stacks them
    return side_by_side(*[r.transpose(1, 0, 2) for r in rows], gap=8).transpose(1, 0, 2)


def canvas_plan(grids, backbone, config) -> codec.CanvasPlan:
    """The plan of `grids` at the preset's canvas and layout (token-aligned: on the backbone's tokens)."""
    return codec.plan_for_grids(grids, config.codec.layout, config.video.height, config.video.width, backbone.token_size)


def within_positions(config):
    """`config` with its canvas cut to the backbone's position table, for check_config: the part past the table is
    what `cover_canvas` extends."""
    largest = largest_canvas(config.backbone)
    if largest is None:
        return config
    video = config.video.model_copy(update={"height": min(config.video.height, largest[0]),
                                            "width": min(config.video.width, largest[1])})
    return config.model_copy(update={"video": video})


def cover_canvas(backbone, config) -> None:
    """CogVideoX1.5 slices its rotary positions from a table of transformer sample_height x sample_width latents;
    the shipped mini's table is its 64x64 pretraining canvas. A larger canvas (--set video.height=80) extends the
    table in memory: the positions it held are unchanged (checked: identical embeddings at 64x64)."""
    table = backbone.transformer.config
    latent = [side // backbone.spatial_compression for side in (config.video.height, config.video.width)]
    if "sample_height" in table and (table.sample_height < latent[0] or table.sample_width < latent[1]):
        backbone.transformer.register_to_config(sample_height=max(table.sample_height, latent[0]),
                                                sample_width=max(table.sample_width, latent[1]))


def copy_fidelity(backbone, config, sides=COPY_SIDES) -> dict:
    rng = stream_rng("mini-ceiling-copy", 0, 0)
    result = {}
    for side in tqdm(sides, desc="copy"):
        exact = 0
        for _ in range(COPY_GRIDS):
            grid = Grid.from_array(noise_grid(rng, max_side=side, min_side=side, density=0.6))
            plan = canvas_plan([grid], backbone, config)
            frame_2 = generate(backbone, [codec.render(grid, plan)], config)[0][2]
            exact += codec.decode(frame_2, plan, grid.shape).grid == grid
        result[f"{side}x{side}"] = {"exact": exact, "of": COPY_GRIDS}
    return result


def ceiling_pairs(family: str) -> list[Pair]:
    """The family's one hidden rule, 60 pairs: the first 48 train, the last 12 are the fresh inputs."""
    return make_task(family, stream_rng("mini-ceiling", 0, 0), family, train=TRAIN_PAIRS + TEST_PAIRS, test=0).train


def fresh_words(family: str, train_pairs: int) -> str:
    """How many fresh outputs the train pairs fix within the family (arcvdm/pretrain/determinacy.py), and how many
    fresh inputs show a colour that no train input shows."""
    pairs = ceiling_pairs(family)
    tasks = [Task(id=family, train=pairs[:train_pairs], test=[p], concept=family) for p in pairs[TRAIN_PAIRS:]]
    return (f"{sum(map(determined, tasks))}/{TEST_PAIRS} fresh fixed by the train pairs,"
            f" {sum(shows_unseen_colour(t, 0) for t in tasks)}/{TEST_PAIRS} show a colour no train input shows")


def ceiling(backbone, config, family: str, steps: list[int], picture: Path, train_pairs: int = TRAIN_PAIRS) -> dict:
    pairs = ceiling_pairs(family)
    plan = canvas_plan([g.array for p in pairs for g in (p.input, p.output)], backbone, config)
    videos = [make_video(codec.render(p.input, plan), codec.render(p.output, plan), config.video.frames, "discrete", i)
              for i, p in enumerate(pairs[:train_pairs])]
    held_out, seen = pairs[TRAIN_PAIRS:], pairs[:min(TEST_PAIRS, train_pairs)]  # 12 fresh inputs; trained pairs
    first_frames = [codec.render(p.input, plan) for p in held_out + seen]
    trainer = LoraTrainer(backbone, videos, config)  # removes the previous family's adapter
    result, start = {}, time.monotonic()
    for step in [0, *steps]:
        trainer.train(step - trainer.step, progress=False)
        frames = predicted_frames(backbone, first_frames, config)
        grids = [codec.decode(frame, plan, pair.output.shape).grid for frame, pair in zip(frames, held_out + seen)]
        result[str(step)] = {"fresh": outcome(grids[:TEST_PAIRS], held_out),
                             "trained": outcome(grids[TEST_PAIRS:], seen),
                             "seconds": round(time.monotonic() - start)}
    save_png(sheet(grids[:TEST_PAIRS], held_out), picture)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--backbone", default="mini", help="a registered name or a save_pretrained folder")
    parser.add_argument("--families", default=",".join(INSIDE + OUTSIDE),
                        help="comma-separated; default: every family; '' for the copy test alone")
    parser.add_argument("--copy-sides", default=",".join(map(str, COPY_SIDES)), help="grid sides of the copy test")
    parser.add_argument("--steps", default="500,1000", help="checkpoints (training steps)")
    parser.add_argument("--pairs", type=int, default=TRAIN_PAIRS, metavar="N",
                        help=f"train pairs per family, the first N of {TRAIN_PAIRS} (default all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a field of the mini preset, as in arcvdm run (repeatable), e.g. sample.readout=target-frames")
    args = parser.parse_args()
    families, steps = [f for f in args.families.split(",") if f], sorted({int(s) for s in args.steps.split(",")})
    sides = tuple(int(s) for s in args.copy_sides.split(","))
    if not 1 <= args.pairs <= TRAIN_PAIRS:
        sys.exit(f"--pairs {args.pairs}: give 1 to {TRAIN_PAIRS} train pairs per family")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        sys.exit(f"--families: unknown {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    path = args.out / "ceiling.json"
    try:
        overrides = parse_set(args.set)
        config = load_config("mini", {**overrides, "backbone": args.backbone})
        check_config(within_positions(config))
    except ArcvdmError as e:
        sys.exit(str(e))
    settings = {"backbone": args.backbone, "steps": steps, **({"set": overrides} if overrides else {}),
                **({"copy_sides": list(sides)} if sides != COPY_SIDES else {}),
                **({"pairs": args.pairs} if args.pairs != TRAIN_PAIRS else {})}
    results = read_json(path) if path.exists() else {"settings": settings}
    if results.get("settings") != settings:
        sys.exit(f"{path}: made with {results.get('settings')}, not {settings}: use a new OUT")
    backbone = load_backbone(args.backbone, "cpu", "float32")
    cover_canvas(backbone, config)
    if "copy" not in results:
        results["copy"] = copy_fidelity(backbone, config, sides)
        atomic_write_json(path, results)
    print("copy (frame 2 exact):", ", ".join(f"{k} {v['exact']}/{v['of']}" for k, v in results["copy"].items()))
    for family in families:
        if family not in results:
            results[family] = ceiling(backbone, config, family, steps, args.out / f"{family}.png", args.pairs)
            atomic_write_json(path, results)
        row = "  ".join(f"step {s}: fresh {r['fresh']['exact']}/{r['fresh']['of']} ({r['fresh']['cells']:.0%} cells"
                        f"{split_words(r['fresh'])}), trained {r['trained']['exact']}/{r['trained']['of']}"
                        f" ({r['trained']['cells']:.0%})" for s, r in results[family].items())
        print(f"{family + (' (outside)' if family in OUTSIDE else ''):24s} {fresh_words(family, args.pairs)}  {row}",
              flush=True)


if __name__ == "__main__":
    main()
