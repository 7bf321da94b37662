"""Generate videos from first frames with the backbone's current adapter: `generate(backbone, first_frames, config)`.

Family-agnostic batching and seeding around the family's `Backbone.generate` (`arcvdm/backbones/base.py`).

Callers count the cost themselves (one video = sample.steps transformer evaluations, x2 with CFG; `arcvdm.flops`).
"""

from __future__ import annotations

import numpy as np
import torch

from arcvdm.config import RunConfig
from arcvdm.errors import ArcvdmError
from arcvdm.trajectories import target_frame_indices


def generate(backbone, first_frames: list[np.ndarray], config: RunConfig, seed: int | None = None,
             prompts: list[str] | None = None) -> np.ndarray:
    """uint8 [N, F, H, W, 3] videos, one per first frame (uint8 [H, W, 3]), in batches of config.sample.batch_size.

    Video i is drawn with its own CPU generator seeded `seed + i` (config.sample.seed by default), so the
    result does not depend on the batch size or the device's RNG. `prompts`: each frame's prompt (augment.view_prompts;
    None = config.prompt for all); frames are batched with the frames of the same prompt, in order.
    """
    v, s = config.video, config.sample
    backbone.check_video_shape(v.frames, v.height, v.width)
    for i, frame in enumerate(first_frames):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != (v.height, v.width, 3):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ArcvdmError(f"first frame {i} is {got}; expected uint8 {(v.height, v.width, 3)} from config.video")
    seed = s.seed if seed is None else seed
    if prompts is not None and len(prompts) != len(first_frames):
        raise ArcvdmError(f"{len(prompts)} prompts for {len(first_frames)} first frames; give one per frame")
    frames_of: dict[str, list[int]] = {}  # prompt -> its frames, in order
    for i, text in enumerate(prompts or [config.prompt] * len(first_frames)):
        frames_of.setdefault(text, []).append(i)

    backbone.use_compile(config.train.compile)
    backbone.transformer.eval()
    videos: list[np.ndarray | None] = [None] * len(first_frames)
    for text, indices in frames_of.items():
        prompt = backbone.prompt_embeds(text)
        for start in range(0, len(indices), s.batch_size):
            chunk = indices[start : start + s.batch_size]
            pixels = torch.from_numpy(np.stack([first_frames[i] for i in chunk]))
            image = pixels.permute(0, 3, 1, 2).float() / 255.0  # [B, 3, H, W] in [0, 1]
            generators = [torch.Generator().manual_seed(seed + i) for i in chunk]
            out = backbone.generate(image, prompt, config, generators)  # the family's stock pipeline
            for i, video in zip(chunk, np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)):
                videos[i] = video
    return np.stack(videos)


def predicted_frames(backbone, first_frames: list[np.ndarray], config: RunConfig, seed: int | None = None,
                     prompts: list[str] | None = None) -> np.ndarray:
    """uint8 [N, H, W, 3]: the prediction read out of each generated video (`read_out`)."""
    return read_out(generate(backbone, first_frames, config, seed, prompts), config, backbone.temporal_compression)


def read_out(videos: np.ndarray, config: RunConfig, temporal_compression: int) -> np.ndarray:
    """uint8 [N, H, W, 3] from uint8 [N, F, H, W, 3] under `sample.readout`: the last frame, or the rounded mean of
    the frames that the trajectory draws as the target and that decode from the last latent frame (the last
    `temporal_compression` frames). An earlier latent also holds input frames, and the causal decoder blends them in:
    with frame 4 of a 9-frame `discrete` video in the mean, the mini lost train pairs the last frame alone gets right."""
    if config.sample.readout == "last":
        return videos[:, -1]
    count = videos.shape[1]
    frames = [i for i in target_frame_indices(config.video.trajectory, count) if i >= count - temporal_compression]
    return np.round(videos[:, frames].astype(np.float32).mean(axis=1)).astype(np.uint8)
