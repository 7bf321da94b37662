"""Video backbones by name (or any hub id / local pipeline folder), each loaded as its family's `Backbone`.

One module per family (`cogvideox.py`, ...) implements the interface in `arcvdm/backbones/base.py`; this module
only maps names to (family, how to build) and loads. Adding a family = one module + a `FAMILIES` line + its names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from arcvdm.config import RunConfig
from arcvdm.device import pick_device, pick_dtype
from arcvdm.errors import ArcvdmError
from arcvdm.io import read_json
from arcvdm.registry import Registry

# Family name -> "module:class" of its `Backbone` subclass (imported on first use: diffusers is slow to import).
FAMILIES: Registry[str] = Registry("backbone family")
FAMILIES.add("cogvideox", "arcvdm.backbones.cogvideox:CogVideoXBackbone")
FAMILIES.add("ltx", "arcvdm.backbones.ltx:LTXBackbone")
FAMILIES.add("wan", "arcvdm.backbones.wan:WanBackbone")
FAMILIES.add("wan2.2", "arcvdm.backbones.wan22:Wan22Backbone")


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: its family and either a hub id / folder to load or a builder of random weights."""

    family: str
    source: str | None = None  # hub id or local save_pretrained folder, loaded with the family's pipeline class
    build: Callable | None = None  # (device, dtype, force) -> pipeline, for configs built locally


BACKBONES: Registry[BackboneSpec] = Registry("backbone")


def _imported(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _tiny(target: str, **sizes) -> Callable:
    """A builder of a seeded tiny pipeline `module:function` (CPU, fp32; placed by load_backbone), imported on use."""
    return lambda device, dtype, force: _imported(target)(**sizes)


def _full_size(target: str) -> Callable:
    """A builder of a full-size random pipeline `module:function(device, dtype, force=...)`, imported on use."""
    return lambda device, dtype, force: _imported(target)(device, dtype, force=force)


TINY = "arcvdm.backbones.tiny:"
# CogVideoX1.5: `tiny` (1 layer, 2 heads x 16) for tests and the CPU demo; `small` (4 layers, 4 heads x 64, 3.4 M
# parameters) for CPU benchmarks; `mini` pretrained here on generated ARC-style videos (arcvdm/pretrain) and shipped
# as a save_pretrained folder, loaded like any other folder.
BACKBONES.add("tiny", BackboneSpec("cogvideox", build=_tiny(TINY + "build_tiny_pipeline")))
BACKBONES.add("small", BackboneSpec("cogvideox", build=_tiny(TINY + "build_tiny_pipeline", num_layers=4, num_heads=4,
                                                             head_dim=64)))
BACKBONES.add("mini", BackboneSpec("cogvideox", source=str(Path(__file__).parent / "mini")))
BACKBONES.add("cogvideox1.5-5b-i2v", BackboneSpec("cogvideox", source="THUDM/CogVideoX1.5-5B-I2V"))
BACKBONES.add("cogvideox1.5-5b-i2v-random",
              BackboneSpec("cogvideox", build=_full_size("arcvdm.backbones.cogvideox:build_random_5b")))
# LTX-Video: `tiny-ltx` has 1 layer, 2 heads x 16 and a x32/x8 VAE (the real shape rules).
BACKBONES.add("tiny-ltx", BackboneSpec("ltx", build=_tiny(TINY + "build_tiny_ltx_pipeline")))
# `Lightricks/LTX-Video`'s diffusers folder is release 0.9.0, finetrainers' default; 0.9.1, the same 2B transformer
# with a timestep-conditioned VAE, also loads as LTXImageToVideoPipeline. 0.9.5+ condition through
# LTXConditionPipeline, another objective (docs/backbones.md).
BACKBONES.add("ltx-video-2b-i2v", BackboneSpec("ltx", source="Lightricks/LTX-Video"))
BACKBONES.add("ltx-video-2b-0.9.1-i2v", BackboneSpec("ltx", source="Lightricks/LTX-Video-0.9.1"))
BACKBONES.add("ltx-video-2b-i2v-random", BackboneSpec("ltx", build=_full_size("arcvdm.backbones.ltx:build_random_2b")))
# Wan2.1 I2V: `tiny-wan` has 1 layer, 2 heads x 16, a tiny UMT5 and CLIP.
BACKBONES.add("tiny-wan", BackboneSpec("wan", build=_tiny(TINY + "build_tiny_wan")))
BACKBONES.add("wan2.1-i2v-14b-480p", BackboneSpec("wan", source="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"))
BACKBONES.add("wan2.1-i2v-14b-480p-random",
              BackboneSpec("wan", build=_full_size("arcvdm.backbones.wan:build_random_14b")))
# Beyond the paper, Wan2.2 TI2V-5B: first-frame latent replacement, per-token timesteps, no image encoder.
BACKBONES.add("tiny-wan2.2", BackboneSpec("wan2.2", build=_tiny(TINY + "build_tiny_wan22")))
BACKBONES.add("wan2.2-ti2v-5b", BackboneSpec("wan2.2", source="Wan-AI/Wan2.2-TI2V-5B-Diffusers"))
BACKBONES.add("wan2.2-ti2v-5b-random",
              BackboneSpec("wan2.2", build=_full_size("arcvdm.backbones.wan22:build_random_ti2v_5b")))


def family_class(family: str):
    return _imported(FAMILIES.get(family))


def check_config(config: RunConfig) -> RunConfig:
    """Refuse what the config's backbone cannot take (shapes, canvases past its `largest_canvas`, sampling steps,
    LoRA targets, trainer choices, scheduler) in one line, before any model or data loads, and record the scheduler as its diffusers class and the
    family's default trainer choices (config.json shows them).

    Every entry that runs a config calls this (`arcvdm.runner.run_dataset`, `arcvdm.vision.runner.run_vision`, the
    benchmarks). A hub id that is not registered has no family until its model_index.json is read: it is checked
    at load. Returns `config`, updated in place.
    """
    family = family_of(config.backbone)
    if family is not None:
        backbone = family_class(family)
        backbone.check_video_shape(config.video.frames, config.video.height, config.video.width)
        backbone.check_sample_steps(config.sample.steps)
        backbone.lora_target_modules(config.lora.targets)
        backbone.check_training_choices(config.train)
        config.sample.scheduler = backbone.scheduler_class_name(config.sample.scheduler)
        limit = largest_canvas(config.backbone)
        for what, size, most in zip(("height", "width"), (config.video.height, config.video.width), limit or ()):
            if size > most:
                raise ArcvdmError(f"video.{what} = {size}: backbone {config.backbone!r} accepts canvases up to "
                                  f"{limit[0]}x{limit[1]} (sides multiples of {backbone.side_multiple}); "
                                  f"set video.{what} (--{what}) to {most} or less")
    return config


def largest_canvas(name_or_path: str) -> tuple[int, int] | None:
    """The largest (height, width) a registered or local pipeline folder draws, read from its transformer and VAE
    configs without loading weights (the mini: 64x64); None when nothing bounds it below its family's shape rule,
    and for hub ids and built backbones."""
    spec = BACKBONES.get(name_or_path) if name_or_path in BACKBONES else None
    source = spec.source if spec else name_or_path
    if source is None or not Path(source).is_dir():
        return None
    folder = Path(source)
    try:
        transformer, vae = (read_json(folder / part / "config.json") for part in ("transformer", "vae"))
    except (OSError, ValueError):
        return None  # loading names the damaged file
    return family_class(family_of(name_or_path)).largest_canvas(transformer, vae)


def _family_of_pipeline(index: dict, where: str) -> str:
    """The family that claims this model_index.json (its pipeline class, and its config where a class is shared)."""
    for family in FAMILIES:
        if family_class(family).claims(index):
            return family
    raise ArcvdmError(f"{where}: pipeline class {index.get('_class_name')!r} is not an image-to-video family arcvdm "
                      f"knows ({', '.join(FAMILIES)}); pass a folder of one of those pipelines")


def family_of(name_or_path: str, offline: bool = True) -> str | None:
    """The family of a registered name or a local pipeline folder (from its model_index.json, without loading
    weights); for a hub id, None when `offline`, else read from the hub's model_index.json."""
    if name_or_path in BACKBONES:
        return BACKBONES.get(name_or_path).family
    path = Path(name_or_path)
    if path.exists():
        index = path / "model_index.json"
        if not index.is_file():
            raise ArcvdmError(f"{path}: no model_index.json here; pass a folder written by save_pretrained or a hub id")
        try:
            config = read_json(index)
        except ValueError as e:
            raise ArcvdmError(f"{index}: not a diffusers model_index.json ({e}); re-save the pipeline") from None
        if not isinstance(config, dict) or "_class_name" not in config:
            raise ArcvdmError(f"{index}: not a diffusers model_index.json (no _class_name); re-save the pipeline")
        return _family_of_pipeline(config, str(index))
    if name_or_path.count("/") != 1:
        hint = ", or a local pipeline folder, or a hub id owner/name"
        raise ArcvdmError(BACKBONES.unknown_message(name_or_path) + hint)
    if offline:
        return None
    from diffusers import DiffusionPipeline

    try:
        config = DiffusionPipeline.load_config(name_or_path)
    except OSError as e:
        raise ArcvdmError(f"cannot load backbone {name_or_path!r}: {str(e).splitlines()[0]} (download it on a machine "
                          "with hub access and pass the local folder)") from None
    return _family_of_pipeline(config, name_or_path)


def load_backbone(name_or_path: str, device: str | torch.device | None = None,
                  dtype: str | torch.dtype | None = None, force: bool = False):
    """A registered backbone name, a local folder written by `save_pretrained`, or a hub id, placed on device/dtype.

    `force` builds a full-size random model even when its weights look larger than the device's free memory.
    """
    device = pick_device(device)
    dtype = pick_dtype(device, dtype)
    spec = BACKBONES.get(name_or_path) if name_or_path in BACKBONES else None
    family = family_class(spec.family if spec else family_of(name_or_path, offline=False))
    if spec is not None and spec.build is not None:
        pipe = spec.build(device, dtype, force)
    else:
        source = spec.source if spec else name_or_path
        if Path(source).is_dir():  # a folder with a model card: a missing or damaged file is named, with its fix
            from arcvdm.backbones.mini_card import verify_folder

            verify_folder(Path(source))
        try:
            pipe = family.load_pretrained(source, dtype)
        except OSError as e:
            raise ArcvdmError(f"cannot load backbone {source!r}: {str(e).splitlines()[0]} (download it on a machine "
                              "with hub access and pass the local folder)") from None
    family.place(pipe, device, dtype)  # per-component precision; text encoders wait on the CPU
    if device.type == "cuda" and hasattr(pipe.vae, "enable_slicing"):
        pipe.vae.enable_slicing()
    for part in ("transformer", "vae", "text_encoder", "image_encoder"):
        if getattr(pipe, part, None) is not None:
            getattr(pipe, part).requires_grad_(False)
    return family(pipe, name_or_path, device, dtype)
