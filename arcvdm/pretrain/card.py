"""Writing the pretrained folder's model card (`model_card.json` + `README.md`): recipe, data, metrics and the
sha256 of every file, which `arcvdm/backbones/mini_card.py` checks before each load.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from arcvdm.backbones.mini_card import CARD_JSON, CARD_README, rebuild_command, sha256
from arcvdm.io import atomic_write_json, atomic_write_text


def _data_recipe(layout: str) -> dict:
    from arcvdm.pretrain.data import LAYOUTS, TRAJECTORY_MIX
    from arcvdm.pretrain.generator import INSIDE, MAX_SIDE, OUTSIDE

    return {"families_inside": list(INSIDE), "families_outside_never_seen": list(OUTSIDE),
            "tasks": "2-4 train pairs per task, one hidden rule per task, grids 1-10 cells a side",
            "max_side": MAX_SIDE, "layouts": dict(LAYOUTS) if layout == "centered" else {layout: 1.0},
            "trajectories": dict(TRAJECTORY_MIX),
            "vae_data": "half family-task pairs, half transitions between dense random grids in all ten colours",
            "rendering": "arcvdm.codec (the task's plan, as runs draw it) and arcvdm.trajectories.make_video",
            "never": "ARC-AGI or ConceptARC data"}


def _machine(device) -> str:
    """The hardware the weights trained on: the GPU's name on CUDA, and the CPU cores that generated the data (with the
    torch threads, since a build on one thread of a shared machine is slower than one on all its cores)."""
    import torch

    threads = torch.get_num_threads()
    cpu = (f"{os.cpu_count()} CPU cores ({threads} torch thread{'s' * (threads != 1)}), {platform.machine()}, "
           f"torch {torch.__version__}")
    return f"{torch.cuda.get_device_name(device)} with {cpu}" if device.type == "cuda" else cpu


def _stage2_options(r: dict) -> str:
    videos = "fresh videos every step" if r["fresh_videos"] else f"a pool of {r['pool_videos']} videos every {r['chunk_steps']} steps"
    prompt = (f"{r['caption_share']:.0%} of tasks prompted with their rule's name, the rest neutral" if r["caption_share"]
              else "neutral prompt")
    weight = f"answer's latent frame weighted x{r['answer_weight']:g}" if r["answer_weight"] != 1 else "unweighted loss"
    ema = f"EMA of the weights saved (decay {r['ema_decay']:g})" if r["ema_decay"] else "live weights saved"
    return f"{videos}; {prompt}; {weight}; {ema}"


def _vae_stages(r: dict, m: dict) -> str:
    if r.get("vae_from"):
        return f"- Stages 1 and 1b (the VAE): not run; the VAE is `{r['vae_from']}`'s, kept frozen"
    return f"""- Stage 1 (VAE reconstruction, coloured pixels weighted x{1 + r['vae_colour_weight']:g}): {r['vae_steps']} steps, batches of
  {r['vae_frames_batch']} single frames and, every {r['vae_video_every']}th step, {r['vae_batch']} 9-frame videos (final loss {m.get('vae_final_loss')})
- Stage 1b (the decoder alone, encoder frozen, on 9-frame transitions, {r['decoder_still']:.0%} of them replaced by one of
  their grids held still): {r['decoder_steps']} steps of {r['decoder_batch']} videos (final loss {m.get('decoder_final_loss')})"""


def _geometry_flags(card: dict) -> str:
    """The `--set` flags that make a run draw this folder's geometry where the `mini` preset's differs."""
    from arcvdm.config import load_config

    preset, layout = load_config("mini"), card["recipe"].get("layout", "centered")
    flags = [f"--set video.{k}={card['video'][k]}" for k in ("height", "width")
             if card["video"][k] != getattr(preset.video, k)]
    return "".join(f" {f}" for f in flags + ([f"--set codec.layout={layout}"] if layout != preset.codec.layout else []))


def _readme(card: dict) -> str:
    r, m = card["recipe"], card["metrics"]
    size = f"{card['video']['height']}x{card['video']['width']}"
    vae, pairs = m.get("vae_round_trip", {}), m.get("vae_round_trip_transitions", {})
    files = "\n".join(f"| `{name}` | {e['bytes']:,} | `{e['sha256']}` |" for name, e in card["files"].items())
    return f"""# mini: a pretrained miniature CogVideoX1.5-class image-to-video pipeline

The same diffusers classes as CogVideoX1.5-5B-I2V (`CogVideoXImageToVideoPipeline`: `AutoencoderKLCogVideoX`,
`CogVideoXTransformer3DModel` with patch_size_t 2, ofs and rotary embeddings, a small `T5EncoderModel`, the 5B
`CogVideoXDPMScheduler`) at 9 frames x {size} ({r.get('layout', 'centered')} layout), pretrained by arcvdm on generated
ARC-style transition videos.
Load it like any `save_pretrained` folder: `CogVideoXImageToVideoPipeline.from_pretrained(this_folder)`. Runs draw
what it was trained on with `arcvdm run TASKS --preset mini --backbone this_folder{_geometry_flags(card)}`.

- Parameters: {card['parameters']}
{_vae_stages(r, m)}
- Stage 2 (whole transformer of {r['transformer_layers']} layers x {r['transformer_heads']} heads x {r['transformer_head_dim']},
  the LoRA trainer's objective, VAE frozen): {r['transformer_steps']} steps, batch {r['transformer_batch']}, final loss
  {m.get('transformer_final_loss')}; {_stage2_options(r)}
- VAE exact round trips on fresh generated tasks (first and last frame through `codec.decode`): grids held still
  {vae.get('exact')}/{vae.get('grids')}; pairs as transitions {pairs.get('exact')}/{pairs.get('pairs')}
- Training time (compute, summed over resumes): {card['train_seconds'] / 60:.1f} min on {card['machine']}
- Families seen: {', '.join(card['data']['families_inside'])}; never seen: {', '.join(card['data']['families_outside_never_seen'])}
- Rebuild: `{card['rebuild']}` (same recipe and data; CPU float reductions may differ in the last bits)

| file | bytes | sha256 |
|---|---|---|
{files}
"""


def write_pipeline(pretrainer) -> Path:
    """Save the pipeline in fp16 (loads in fp32) with its card into `pretrainer.out`; the card is written last."""
    import torch

    out, recipe = pretrainer.out, pretrainer.recipe
    staging = out / ".pretrain" / "final"
    shutil.rmtree(staging, ignore_errors=True)
    pipe = pretrainer.pipe
    pipe.to(dtype=torch.float16)
    pipe.save_pretrained(staging, safe_serialization=True)
    pipe.to(dtype=torch.float32)
    for entry in sorted(staging.iterdir()):
        os.replace(entry, out / entry.name)
    losses = pretrainer.losses
    files = {str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(out.rglob("*")) if p.is_file() and ".pretrain" not in p.parts
             and p.name not in (CARD_JSON, CARD_README)}
    metrics = dict(pretrainer.metrics)
    for stage in ("vae", "decoder", "transformer"):
        if losses.get(stage):
            metrics[f"{stage}_final_loss"] = round(float(np.mean(losses[stage][-50:])), 5)
    card = {
        "name": "mini",
        "pipeline": "CogVideoXImageToVideoPipeline",
        "video": {"frames": 9, "height": recipe.canvas, "width": recipe.canvas},
        "parameters": {name: sum(p.numel() for p in getattr(pipe, name).parameters())
                       for name in ("vae", "transformer", "text_encoder")},
        "storage_dtype": "float16",
        "recipe": asdict(recipe),
        "data": _data_recipe(recipe.layout),
        "metrics": metrics,
        "train_seconds": round(pretrainer.elapsed, 1),
        "machine": _machine(pretrainer.device),
        "rebuild": pretrainer.command or rebuild_command(recipe.seed),
        "files": files,
    }
    atomic_write_text(out / CARD_README, _readme(card))
    atomic_write_json(out / CARD_JSON, card)
    shutil.rmtree(out / ".pretrain", ignore_errors=True)
    return out
