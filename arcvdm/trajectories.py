"""Transition videos from an input frame to a target frame: trajectories by name, any F >= 2 frames
(each backbone family checks its own frame rule)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from arcvdm.errors import ArcvdmError
from arcvdm.registry import Registry

# A trajectory maps (first, last, frames, rng) to a float or uint8 [F, H, W, 3] video.
Trajectory = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]
TRAJECTORIES: Registry[Trajectory] = Registry("trajectory")
TILE_GRID = 4


def _blend(weight: Callable[[np.ndarray], np.ndarray]) -> Trajectory:
    def trajectory(first: np.ndarray, last: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
        w = weight(np.linspace(0.0, 1.0, frames))[:, None, None, None]
        return (1.0 - w) * first.astype(np.float32) + w * last.astype(np.float32)

    return trajectory


TRAJECTORIES.add("linear", _blend(lambda t: t))
TRAJECTORIES.add("quadratic", _blend(lambda t: t**2))
TRAJECTORIES.add("square-root", _blend(np.sqrt))


@TRAJECTORIES.register("discrete")
def discrete(first: np.ndarray, last: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """The first F//2 frames show the input, the rest the target (F = 9: switch at index 4)."""
    return np.stack([first if i < frames // 2 else last for i in range(frames)])


@TRAJECTORIES.register("tiles")
def tiles(first: np.ndarray, last: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A 4x4 mosaic: frame k shows floor(k/(F-1)*16) target tiles, revealed in a seeded shuffled order."""
    height, width = first.shape[:2]
    ys = np.linspace(0, height, TILE_GRID + 1).astype(int)
    xs = np.linspace(0, width, TILE_GRID + 1).astype(int)
    order = rng.permutation(TILE_GRID * TILE_GRID)
    video = np.repeat(first[None], frames, axis=0)
    for k in range(frames):
        for tile in order[: k * TILE_GRID * TILE_GRID // (frames - 1)]:
            r, c = divmod(int(tile), TILE_GRID)
            video[k, ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = last[ys[r] : ys[r + 1], xs[c] : xs[c + 1]]
    return video


def check_frames(frames: int) -> int:
    """Any video of at least two frames has a first (input) and a last (target) frame; each backbone family adds
    its own frame rule (`Backbone.check_video_shape`: CogVideoX 8k+1, Wan 4k+1, ...)."""
    if not isinstance(frames, (int, np.integer)) or frames < 2:
        raise ArcvdmError(f"video.frames = {frames}: a transition video needs at least 2 frames; set video.frames")
    return int(frames)


def make_video(first: np.ndarray, last: np.ndarray, frames: int = 9, trajectory: str = "discrete", seed: int = 0) -> np.ndarray:
    """A uint8 [F, H, W, 3] video from `first` to `last`; frame 0 is exactly `first` and frame F-1 exactly `last`."""
    frames = check_frames(frames)
    if first.shape != last.shape or first.ndim != 3 or first.shape[2] != 3:
        raise ArcvdmError(f"first and last frames must both be [H, W, 3], got {first.shape} and {last.shape}")
    make = TRAJECTORIES.get(trajectory)
    video = make(first, last, frames, np.random.default_rng(seed))
    video = np.clip(np.rint(video), 0, 255).astype(np.uint8)
    video[0], video[-1] = first, last  # exact endpoints whatever the rounding
    return video


def target_frame_indices(trajectory: str, frames: int) -> tuple[int, ...]:
    """The frames that `trajectory` draws exactly as the target whatever the two frames are (always the last one)."""
    first, last = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8)  # 16 px: every tile is drawn
    video = make_video(first, last, frames, trajectory)
    return tuple(i for i in range(len(video)) if np.array_equal(video[i], last))
