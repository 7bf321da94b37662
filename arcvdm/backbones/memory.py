"""Memory of the full-size models, counted on the `meta` device (nothing allocated).

Build full-size random models only when their weights fit: a 5B-parameter model needs ~11 GB in bf16 and ~22 GB in
fp32; allocating that on a laptop or a small node gets the process killed by the OS (or worse). `build_checked`
refuses in one line instead; `--force` overrides.

What a paper preset's LoRA training step holds on the GPU (`training_memory`, `python -m arcvdm.backbones.memory`
prints the table of docs/backbones.md): the resident weights, the LoRA with its gradient and AdamW state, and the
activations the backward pass keeps, with and without gradient checkpointing.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable

import torch

from arcvdm.errors import ArcvdmError

def free_bytes(device: torch.device) -> int | None:
    """Free memory on `device` (None = unlimited: the meta device allocates nothing)."""
    if device.type == "meta":
        return None
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def weight_bytes(modules, dtype: torch.dtype) -> int:
    return sum(p.numel() for m in modules for p in m.parameters()) * torch.empty((), dtype=dtype).element_size()


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_checked(build: Callable[[], dict[str, torch.nn.Module]], device: torch.device, dtype: torch.dtype, name: str,
                  seed: int = 0, force: bool = False) -> dict[str, torch.nn.Module]:
    """`build()` (returning named modules) with seeded random weights created directly on `device` in `dtype`,
    after checking on the meta device that the weights fit the device's free memory."""
    with torch.device("meta"), _default_dtype(dtype):
        need = weight_bytes(build().values(), dtype)
    free = free_bytes(device)
    if free is not None and need > free and not force:
        raise ArcvdmError(f"{name}: its weights need {need / 2**30:.1f} GiB in {str(dtype).removeprefix('torch.')} "
                          f"but {device} has {free / 2**30:.1f} GiB free; use a GPU with more memory, bf16, "
                          "or --force to try anyway")
    torch.manual_seed(seed)
    with torch.device(device), _default_dtype(dtype):  # never materialise fp32 weights first
        return build()


def random_pipeline(pipeline_class, name: str, build: Callable[[], dict[str, torch.nn.Module]], device: torch.device,
                    dtype: torch.dtype, force: bool = False, **components):
    """A stock `pipeline_class` around the full-size modules `build()` names (checked by `build_checked`, in eval
    mode), plus `components` (scheduler, ...). No tokenizer or text encoder: the random backbones use a seeded
    stand-in prompt embedding (`arcvdm.backbones.base.stand_in_embeds`)."""
    modules = build_checked(build, device, dtype, name, force=force)
    pipe = pipeline_class(tokenizer=None, text_encoder=None, **{k: m.eval() for k, m in modules.items()}, **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- training memory of the paper presets -------------------------------------------------------------------------

PAPER_PRESETS = ("paper-arc", "paper-ltx", "paper-wan")
# Usable memory of the paper's GPUs (GiB, as torch.cuda.mem_get_info reports the card's total): 24 GB (RTX 4090),
# 80 GB (A100/H100), 141 GB (H200); a step fits when it leaves HEADROOM_GIB for the CUDA context and the allocator.
GPUS_GIB = {"24 GB": 23.99, "80 GB": 79.19, "141 GB": 139.8}
HEADROOM_GIB = 2.0
LORA_STATE_BYTES = 16  # per LoRA parameter: fp32 weight, fp32 gradient, AdamW's two fp32 moments
# The text encoders the random stand-ins leave out (`T5EncoderModel` / `UMT5EncoderModel` XXL, as shipped): parked
# on the CPU once the prompt is cached, so they cost the GPU nothing during training; listed for what that saves.
TEXT_ENCODER_XXL = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, feed_forward_proj="gated-gelu")
TEXT_VOCAB = {"cogvideox": ("T5", 32128), "ltx": ("T5", 32128), "wan": ("UMT5", 256384), "wan2.2": ("UMT5", 256384)}


def _gib(n: float) -> float:
    return round(n / 2**30, 2)


def _bytes(module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def text_encoder_bytes(family: str, dtype: torch.dtype) -> int:
    """The shipped XXL text encoder of `family`, counted on meta in `dtype`."""
    import transformers

    kind, vocab = TEXT_VOCAB[family]
    config = getattr(transformers, f"{kind}Config")(vocab_size=vocab, **TEXT_ENCODER_XXL)
    with torch.device("meta"):
        return _bytes(getattr(transformers, f"{kind}EncoderModel")(config).to(dtype))


class _FlashLikeAttention(torch.autograd.Function):
    """`scaled_dot_product_attention` as a flash kernel keeps it for the backward pass (q, k, v, the output and one
    fp32 log-sum-exp per query), not the full attention matrix the math kernel, which meta tensors get, would save."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


class _SavedTensors:
    """Bytes of the distinct storages autograd saves for the backward pass, parameters and buffers left out."""

    def __init__(self, exclude: set[int]):
        self.exclude, self.storages = exclude, {}

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        if storage._cdata not in self.exclude:
            self.storages[storage._cdata] = storage.nbytes()
        return tensor

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor)

    def total(self, minus: dict[int, int] | None = None) -> int:
        return sum(n for key, n in self.storages.items() if key not in (minus or {}))


def activation_bytes(backbone, batch: int, frames: int, height: int, width: int) -> dict[str, int]:
    """What one training forward of the LoRA'd transformer keeps for its backward pass at this batch and video size
    (on the backbone's device: `meta` for the full-size stand-ins):
    `plain` without gradient checkpointing; `checkpointed`, the block inputs kept for recomputation plus what is
    saved outside the blocks plus one block's activations (recomputed during the backward pass). Counted on meta with
    flash-attention's saved tensors; transient buffers of the backward pass are not included."""
    from unittest import mock

    transformer = backbone.transformer
    exclude = {t.untyped_storage()._cdata for t in (*transformer.parameters(), *transformer.buffers())}
    everything, outside, held = _SavedTensors(exclude), _SavedTensors(exclude), _SavedTensors(exclude)
    blocks: list[_SavedTensors] = []

    def checkpoint(block, *args):
        for arg in args:
            if isinstance(arg, torch.Tensor):
                held.pack(arg)
        blocks.append(_SavedTensors(exclude))
        with blocks[-1].hooks():
            return block(*args)

    inputs = backbone.forward_inputs(frames, height, width, backbone.device)
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == 1:
            value = value.expand(batch, *value.shape[1:])  # the batch shares storage: count it as `batch` copies
            inputs[key] = (value.to(backbone.dtype) if "hidden_states" in key else value).contiguous()
    transformer.enable_gradient_checkpointing(checkpoint)
    transformer.train()
    def sdpa(query, key, value, *args, **kwargs):
        return _FlashLikeAttention.apply(query, key, value)

    try:
        with mock.patch("torch.nn.functional.scaled_dot_product_attention", sdpa), outside.hooks():
            transformer(**inputs, return_dict=False)
    finally:
        transformer.disable_gradient_checkpointing()
        transformer.eval()
    for part in (outside, *blocks):
        everything.storages.update(part.storages)
    kept = {**outside.storages, **held.storages}
    return {"plain": everything.total(),
            "checkpointed": sum(kept.values()) + max((b.total(minus=kept) for b in blocks), default=0)}


def training_memory(preset: str) -> dict[str, Any]:
    """GPU memory of one LoRA training step of `preset` on its backbone's full-size random stand-in, on meta."""
    from peft import LoraConfig

    from arcvdm.backbones import BACKBONES, check_config, load_backbone
    from arcvdm.config import load_config

    config = check_config(load_config(preset))
    family = BACKBONES.get(config.backbone).family
    name = config.backbone + "-random"
    backbone = load_backbone(name, device="meta", dtype="bf16")
    pipe, v = backbone.pipe, config.video
    resident = {part: _bytes(module) for part, module in pipe.components.items()
                if isinstance(module, torch.nn.Module) and part != "transformer" and part not in backbone.parked_parts}
    parked = {part: _bytes(module) for part, module in pipe.components.items()
              if isinstance(module, torch.nn.Module) and part in backbone.parked_parts}
    parked["text_encoder"] = text_encoder_bytes(family, torch.bfloat16)
    weights = _bytes(backbone.transformer)
    backbone.transformer.add_adapter(LoraConfig(r=config.lora.rank, lora_alpha=config.lora.alpha,
                                                target_modules=backbone.lora_target_modules(config.lora.targets)))
    lora = [p for p in backbone.transformer.parameters() if p.requires_grad]
    for p in lora:
        p.data = p.data.float()  # the trainer keeps the LoRA in fp32 for AdamW
    activations = activation_bytes(backbone, config.train.batch_size, v.frames, v.height, v.width)
    checkpointing = config.train.gradient_checkpointing
    total = weights + sum(resident.values()) + LORA_STATE_BYTES * sum(p.numel() for p in lora) + \
        activations["checkpointed" if checkpointing else "plain"]
    return {
        "preset": preset, "backbone": name, "batch": config.train.batch_size, "video": [v.frames, v.height, v.width],
        "transformer_gib": _gib(weights), "resident_gib": {k: _gib(n) for k, n in resident.items()},
        "parked_on_cpu_gib": {k: _gib(n) for k, n in parked.items()},
        "lora_parameters": sum(p.numel() for p in lora), "lora_state_gib": _gib(LORA_STATE_BYTES * sum(p.numel() for p in lora)),
        "activations_gib": _gib(activations["plain"]), "activations_checkpointed_gib": _gib(activations["checkpointed"]),
        "gradient_checkpointing": checkpointing, "total_gib": _gib(total),
        "fits": {gpu: total / 2**30 + HEADROOM_GIB <= gib for gpu, gib in GPUS_GIB.items()},
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as the Markdown table of docs/backbones.md."""
    head = ["preset", "stand-in counted", "batch", "transformer", "VAE etc. on GPU", "parked on CPU", "LoRA params",
            "LoRA + grad + AdamW", "activations", "activations, checkpointed", "step total", *GPUS_GIB]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ckpt = " (checkpointing on)" if r["gradient_checkpointing"] else ""
        lines.append("| " + " | ".join([
            f"`{r['preset']}`", f"`{r['backbone']}`", str(r["batch"]), f"{r['transformer_gib']} GiB",
            ", ".join(f"{k} {n} GiB" for k, n in r["resident_gib"].items()),
            ", ".join(f"{k} {n} GiB" for k, n in r["parked_on_cpu_gib"].items()),
            f"{r['lora_parameters'] / 1e6:.0f} M", f"{r['lora_state_gib']} GiB", f"{r['activations_gib']} GiB",
            f"{r['activations_checkpointed_gib']} GiB", f"{r['total_gib']} GiB{ckpt}",
            *("yes" if r["fits"][gpu] else "no" for gpu in GPUS_GIB)]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m arcvdm.backbones.memory [PRESET ...]
    print(table([training_memory(preset) for preset in sys.argv[1:] or PAPER_PRESETS]))
