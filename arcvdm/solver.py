"""Solve one ARC problem: render its pairs, train a LoRA in chunks, predict at every checkpoint, select k attempts.

Read top to bottom: `solve_problem` builds the videos (every train pair under every training transform, and
under augment.placements anchored placements), then `solve` runs the loop

    for step in the fixed schedule (every train.eval_every steps up to train.steps):
        train the learner up to `step`            (leave-one-out: without pair `held_out` in this chunk)
        predict the last frame of every train input (untransformed) and every test input (augment.views views)
        decode (and map views back), record predictions, correctness, errors, PNGs
        stop early once `selection.decided` says no later checkpoint can change the attempts

and returns the problem's JSON record (see docs/run-folder.md). The model sits behind
`Learner` (train up to a step, predict last frames), so tests drive the same loop with a scripted stand-in;
`DiffusionLearner` is the real one (LoraTrainer + generate on a loaded backbone).
"""

from __future__ import annotations

import random
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from arcvdm import codec
from arcvdm.augment import (IDENTITY, Transform, after_colors, augmented_tasks, commuting_color_maps, commuting_views,
                            familiar_color_map, redraw_placement, sample_transforms, view_prompts)
from arcvdm.config import RunConfig
from arcvdm.device import peak_memory_bytes, reset_peak_memory
from arcvdm.errors import ArcvdmError
from arcvdm.flops import compute_record
from arcvdm.render import save_gif, save_png
from arcvdm.selection import Checkpoint, decided, schedule_steps, select
from arcvdm.tasks import Grid, Task
from arcvdm.trajectories import make_video
from arcvdm.voting import Candidate, vote


class Learner(Protocol):
    """The model-facing part of a solve: one per problem, starting from the frozen base."""

    def train_until(self, step: int, held_out: int | None = None) -> None:
        """Train up to `step` (total); `held_out`: train pair whose videos this chunk leaves out."""

    def predict(self, first_frames: list[np.ndarray], seed: int, prompts: list[str]) -> list[np.ndarray]:
        """Last frame [H,W,3] uint8 of the video generated from each first frame under its prompt (one per frame);
        frame n uses seed + n."""


# Builds the learner of one problem from its training videos, grouped by train pair (videos_by_pair[i] is
# pair i under every training transform and placement, see `training_videos`), and each video's prompt.
LearnerFactory = Callable[[list[list[np.ndarray]], list[list[str]]], Learner]


class DiffusionLearner:
    """The real learner: a LoRA on `backbone` trained with `arcvdm.train.LoraTrainer`, sampled with `arcvdm.sample`."""

    def __init__(self, backbone: Any, videos_by_pair: list[list[np.ndarray]], prompts_by_pair: list[list[str]],
                 config: RunConfig, progress: bool = False):
        from arcvdm.train import LoraTrainer

        # LoraTrainer removes the previous problem's adapter: every problem trains from the frozen base.
        self.backbone, self.config, self.progress = backbone, config, progress
        self.trainer = LoraTrainer(backbone, [v for videos in videos_by_pair for v in videos], config, progress,
                                   prompts=[p for prompts in prompts_by_pair for p in prompts])
        # The pipeline's denoising bar, on a terminal only (`ProblemBar`).
        backbone.pipe.set_progress_bar_config(disable=None if progress else True, leave=False, desc="sampling")
        # Videos are encoded once, pair-major; a leave-one-out chunk trains on the rows of the other pairs.
        self.pair_of_row = np.repeat(np.arange(len(videos_by_pair)), [len(v) for v in videos_by_pair])

    def train_until(self, step: int, held_out: int | None = None) -> None:
        rows = None if held_out is None else np.flatnonzero(self.pair_of_row != held_out).tolist()
        self.trainer.train(step - self.trainer.step, progress=self.progress, rows=rows)

    def predict(self, first_frames: list[np.ndarray], seed: int, prompts: list[str]) -> list[np.ndarray]:
        from arcvdm.sample import predicted_frames

        return list(predicted_frames(self.backbone, first_frames, self.config, seed=seed, prompts=prompts))


def solve_problem(task: Task, config: RunConfig, backbone: Any, out_dir: Path, progress: Any = None,
                  make_learner: LearnerFactory | None = None) -> dict:
    """The problem's result record (status "done"), with last-frame PNGs and the first training video under `out_dir`.

    `make_learner` replaces the diffusion model (tests pass a scripted stand-in); by default a LoRA on `backbone`.
    Raises on failure: the run loop records the reason.
    """
    if make_learner is None:
        make_learner = partial(DiffusionLearner, backbone, config=config, progress=bool(progress))
    per_forward = None
    if hasattr(backbone, "forward_flops"):
        per_forward = backbone.forward_flops(config.video.frames, config.video.height, config.video.width)
    with ProblemBar(task.id, schedule_steps(config.train.steps, config.train.eval_every)[-1], bool(progress)) as bar:
        return solve(task, config, make_learner, Path(out_dir), per_forward_flops=per_forward,
                     device=getattr(backbone, "device", None), token=getattr(backbone, "token_size", None), bar=bar)


class ProblemBar:
    """One line per problem on a terminal, none in logs or tests: training steps done of the schedule, and the phase
    (encoding, training, sampling a checkpoint). The trainer's step bar and the sampler's denoising bar open below it
    and vanish when done (leave=False), under the run's bar over problems."""

    def __init__(self, task_id: str, steps: int, enabled: bool = False):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=steps, desc=task_id, unit="step", leave=False, dynamic_ncols=True,
                        disable=None if enabled else True)  # None: only when stderr is a terminal

    def phase(self, words: str, step: int | None = None) -> None:
        if step is not None:
            self.bar.update(step - self.bar.n)
        self.bar.set_postfix_str(words, refresh=True)

    def __enter__(self) -> "ProblemBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def training_transforms(config: RunConfig, task: Task | None = None) -> list[Transform]:
    """The configured views; with `task`, augment.commuting_colors draws the colour maps from its train pairs, and
    augment.commuting_views keeps only the views they show to commute."""
    aug = config.augment
    colors = commuting_color_maps(task, aug.color_maps, aug.seed) if task is not None and aug.commuting_colors else None
    transforms = sample_transforms(aug.symmetries, aug.color_maps, aug.seed, colors)
    return commuting_views(task, transforms) if task is not None and config.augment.commuting_views else transforms


def prompt_of_view(config: RunConfig) -> Callable[[Transform], str]:
    """Each view's prompt: its own under augment.view_prompts (codes from every configured view, so a view keeps its
    prompt whatever the commuting filter drops), else config.prompt."""
    if not config.augment.view_prompts:
        return lambda view: config.prompt
    return view_prompts(config.prompt, training_transforms(config)).__getitem__


def inference_views(config: RunConfig, transforms: list[Transform] | None = None) -> list[Transform]:
    """`augment.views` transforms: the training ones (`transforms`, as `solve` drew them for its task; else the
    config's) in order (identity first), cycled if there are more views (a repeated transform still differs by its
    sampler seed)."""
    transforms = transforms or training_transforms(config)
    return [transforms[v % len(transforms)] for v in range(config.augment.views)]


def views_of_test_inputs(config: RunConfig, task: Task, views: list[Transform]) -> list[list[Transform]]:
    """Each test input's views: the inference `views`, after its `familiar_color_map` under augment.familiar_colors."""
    familiar = [familiar_color_map(task, j) if config.augment.familiar_colors else IDENTITY for j in range(len(task.test))]
    return [[after_colors(view, f) for view in views] for f in familiar]


def canvas_plan(task: Task, config: RunConfig, token: int | None = None) -> codec.CanvasPlan:
    """One cell size for every grid any transform shows the model (a transpose swaps rows and columns);
    like `codec.plan_for_task`, from visible grids only. The inference views are training transforms too.
    `token`: the backbone's token size, which the token-aligned layout needs. Size advice for grids that do not fit
    names only canvases the backbone accepts."""
    from arcvdm.backbones import largest_canvas

    grids = [g for t in augmented_tasks(task, training_transforms(config)) for g in t.visible_grids()]
    largest = largest_canvas(config.backbone)
    limit = codec.CanvasLimit(*largest, config.backbone) if largest else None
    return codec.plan_for_grids(grids, config.codec.layout, config.video.height, config.video.width, token, limit)


def placement_plans(plan: codec.CanvasPlan, config: RunConfig) -> list[codec.CanvasPlan]:
    """The training placements: `plan` itself, then augment.placements - 1 re-drawn from it (seeded by
    augment.seed), shared by every pair like one placement per epoch."""
    rng = random.Random(config.augment.seed)
    return [plan, *(redraw_placement(plan, rng) for _ in range(config.augment.placements - 1))]


def fits(plan: codec.CanvasPlan, *grids: Grid) -> bool:
    """Whether `plan` can draw every one of `grids` (cells of at least codec.MIN_CELL px)."""
    return all(plan.cell_for(g.shape) >= codec.MIN_CELL for g in grids)


def video_views(task: Task, config: RunConfig, transforms: list[Transform],
                plan: codec.CanvasPlan) -> list[list[tuple[int, int]]]:
    """(transform index, placement index) of each video of `training_videos`, per train pair.

    A re-drawn placement keeps every grid its standard plan was made for; a pair it would squeeze below
    the minimum cell size skips that placement instead of failing the problem.
    """
    plans = placement_plans(plan, config)
    return [[(n, q) for n, t in enumerate(transforms) for q, placed in enumerate(plans)
             if not q or fits(placed, t.apply(p.input), t.apply(p.output))] for p in task.train]


def training_videos(task: Task, config: RunConfig, transforms: list[Transform], plan: codec.CanvasPlan,
                    views_by_pair: list[list[tuple[int, int]]]) -> list[list[np.ndarray]]:
    """videos_by_pair[i]: train pair i under each (transform, placement) of `views_by_pair[i]` (`video_views`)."""
    plans = placement_plans(plan, config)
    videos_by_pair = []
    for i, (p, views) in enumerate(zip(task.train, views_by_pair)):
        videos = []
        for n, q in views:
            t, placed = transforms[n], plans[q]
            videos.append(make_video(codec.render(t.apply(p.input), placed), codec.render(t.apply(p.output), placed),
                                     frames=config.video.frames, trajectory=config.video.trajectory,
                                     # the `tiles` order differs per video
                                     seed=config.train.seed + (i * len(transforms) + n) * len(plans) + q))
        videos_by_pair.append(videos)
    return videos_by_pair


def solve(task: Task, config: RunConfig, make_learner: LearnerFactory, out_dir: Path,
          per_forward_flops: float | None = None, device: Any = None, token: int | None = None,
          bar: ProblemBar | None = None) -> dict:
    t_start = time.perf_counter()
    bar = bar or ProblemBar(task.id, 0)
    reset_peak_memory(device)
    layout = config.codec.layout
    unanswered = [j for j, p in enumerate(task.test) if p.output is None]
    if layout in codec.SHAPE_GIVEN and unanswered:  # every attempt would be undecodable: refuse before any training
        raise ArcvdmError(f"{f'{task.source}: ' if task.source else ''}task {task.id}: test {unanswered[0]} has no output, and the {layout} "
                          "layout decodes with the output's size: use --layout anchored (size read from the frame), "
                          "or a dataset with answers")
    transforms = training_transforms(config, task)
    views = inference_views(config, transforms)
    seen_as = views_of_test_inputs(config, task, views)  # seen_as[j][v]: view v of test input j, as drawn for the model
    plan = canvas_plan(task, config, token)
    prompt_of = prompt_of_view(config)

    views_by_pair = video_views(task, config, transforms, plan)
    videos_by_pair = training_videos(task, config, transforms, plan, views_by_pair)
    prompts_by_pair = [[prompt_of(transforms[n]) for n, _ in views] for views in views_by_pair]
    out_dir.mkdir(parents=True, exist_ok=True)
    save_gif(videos_by_pair[0][0], out_dir / "train0.gif")
    n_videos = sum(len(v) for v in videos_by_pair)
    bar.phase(f"encoding {n_videos} training video{'s' if n_videos != 1 else ''}")
    learner = make_learner(videos_by_pair, prompts_by_pair)

    rule = config.selection.rule if len(task.train) > 1 else "paper"  # leave-one-out needs a pair to spare
    k = config.selection.attempts
    schedule = schedule_steps(config.train.steps, config.train.eval_every)
    train_frames = [codec.render(p.input, plan) for p in task.train]
    test_slots = [(v, j) for v in range(len(views)) for j in range(len(task.test))]
    test_frames = [codec.render(seen_as[j][v].apply(task.test[j].input), plan) for v, j in test_slots]
    prompts = [config.prompt] * len(train_frames) + [prompt_of(views[v]) for v, _ in test_slots]
    t_setup = time.perf_counter() - t_start

    records: list[dict] = []
    checkpoints: list[Checkpoint] = []
    candidates: list[list[list[Candidate]]] = []  # per checkpoint, per test input: one per view
    train_s = sample_s = 0.0
    sampler_calls = 0
    steps_run = 0
    for c, step in enumerate(schedule):
        held_out = c % len(task.train) if rule == "leave-one-out" else None
        t0 = time.perf_counter()
        bar.phase(f"training to step {step}")
        learner.train_until(step, held_out)
        steps_run = step
        t1 = time.perf_counter()
        train_s += t1 - t0
        bar.phase(f"checkpoint {c + 1} of {len(schedule)}: sampling {len(train_frames) + len(test_frames)} videos", step)

        # One batch per checkpoint: every train input once, untransformed (the selection signal), then every
        # test input under every view. Frame n is sampled with seed sample.seed + n (see `Learner.predict`).
        last = learner.predict(train_frames + test_frames, seed=config.sample.seed, prompts=prompts)
        sampler_calls += len(last)
        train_entries = []
        for i, (p, frame) in enumerate(zip(task.train, last)):
            save_png(frame, out_dir / f"step{step}-train{i}.png")
            grid, error = _decode(frame, plan, p.output.shape if layout in codec.SHAPE_GIVEN else None, config)
            train_entries.append({"prediction": _rows(grid), "correct": grid == p.output, "error": error})

        test_candidates: list[list[Candidate]] = [[] for _ in task.test]
        test_views: list[list[dict]] = [[] for _ in task.test]
        for n, ((v, j), frame) in enumerate(zip(test_slots, last[len(train_frames):]), start=len(train_frames)):
            view, p = seen_as[j][v], task.test[j]
            save_png(frame, out_dir / (f"step{step}-test{j}.png" if v == 0 else f"step{step}-test{j}-view{v}.png"))
            # centered, token-aligned: the paper's assumption, the size from the ground truth (solve refused tasks without one)
            shape = view.apply(p.output).shape if layout in codec.SHAPE_GIVEN else None
            seen_grid, error = _decode(frame, plan, shape, config)
            grid = None if seen_grid is None else view.invert(seen_grid)
            seed = config.sample.seed + n
            # The vote sees the inference view: the familiar colour map is every view's, so view 0 stays the
            # untransformed one that wins ties.
            test_candidates[j].append(Candidate(grid, views[v], step, seed))
            test_views[j].append({"transform": view.name, "seed": seed, "prediction": _rows(grid), "error": error})
        sample_s += time.perf_counter() - t1

        # The checkpoint's own test prediction is the first view's (untransformed, or in familiar colours only); the
        # other views only vote.
        test_entries = [{"prediction": tv[0]["prediction"], "error": tv[0]["error"],
                         **({"transform": tv[0]["transform"]} if tv[0]["transform"] != IDENTITY.name else {})}
                        for tv in test_views]
        if len(views) > 1:
            for entry, tv in zip(test_entries, test_views):
                entry["views"] = tv
        record = {"step": step, "train": train_entries, "test": test_entries}
        if held_out is not None:
            record["held_out"] = held_out
        records.append(record)
        candidates.append(test_candidates)
        checkpoints.append(Checkpoint(
            step=step,
            train_correct=tuple(e["correct"] for e in train_entries),
            test=tuple(cands[0].grid for cands in test_candidates),
            held_out=held_out,
        ))
        if config.train.early_stop and decided(checkpoints, schedule, k, rule):
            break

    selection = select(checkpoints, k, rule, distinct=config.selection.distinct)
    selection_json = selection.to_json()
    if config.selection.rule != rule:
        selection_json["requested_rule"] = config.selection.rule  # one train pair: nothing to hold out

    votes = None
    attempts = [_attempt_entry(grids) for grids in selection.attempts]
    if len(views) > 1:
        # Pool every view of the selected window's checkpoints and vote on whole grids; slots left empty
        # (fewer distinct grids than k) take the rule's own distinct attempts that the vote does not have yet.
        window = selection.order[:k]
        results = [vote([cand for c in window for cand in candidates[c][j]], k) for j in range(len(task.test))]
        attempts = []
        for result, fallback in zip(results, selection.attempts):
            voted = [g for g in result.attempts if g is not None]
            if config.selection.distinct:
                voted += [g for g in fallback if g is not None and g not in voted]
            voted = (voted + [None] * k)[:k]
            attempts.append(_attempt_entry(voted))
        votes = [r.counts for r in results]

    return {
        "task_id": task.id,
        "family": config.family,
        "concept": task.concept,
        "status": "done",
        "layout": layout,
        "output_size_from": "ground-truth" if layout in codec.SHAPE_GIVEN else "frame",
        "checkpoints": records,
        "selection": selection_json,
        "attempts": attempts,
        "votes": votes,
        "train_steps_run": steps_run,
        "training_videos": sum(len(v) for v in videos_by_pair),
        **({"commuting_views": [t.name for t in transforms]}
           if config.augment.commuting_views or config.augment.commuting_colors else {}),
        "train_steps_fixed": schedule[-1],
        **compute_record(steps_run, sampler_calls, config, per_forward_flops),
        "timings": {"setup_s": round(t_setup, 3), "train_s": round(train_s, 3), "sample_s": round(sample_s, 3),
                    "total_s": round(time.perf_counter() - t_start, 3)},
        "peak_memory_bytes": peak_memory_bytes(device),
        "seed": config.train.seed,
    }


def _decode(frame: np.ndarray, plan: codec.CanvasPlan, shape: tuple[int, int] | None,
            config: RunConfig) -> tuple[Grid | None, str | None]:
    decoded = codec.decode(frame, plan, shape, color_correction=config.codec.color_correction)
    return decoded.grid, None if decoded.grid is not None else f"decode: {decoded.reason}"


def _rows(grid: Grid | None) -> list[list[int]] | None:
    return None if grid is None else grid.root


def _attempt_entry(grids: list[Grid | None]) -> dict[str, list[list[int]] | None]:
    """One test input's entry in `attempts`: {"attempt_1": grid or None, ..., "attempt_k": ...}."""
    return {f"attempt_{n + 1}": _rows(g) for n, g in enumerate(grids)}
