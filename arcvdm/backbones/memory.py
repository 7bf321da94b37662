"""Build full-size random models only when their weights fit: count the parameters on `meta` first, then allocate.

A 5B-parameter model needs ~11 GB in bf16 and ~22 GB in fp32; allocating that on a laptop or a small node
gets the process killed by the OS (or worse). `build_checked` refuses in one line instead; `--force` overrides.
"""

from __future__ import annotations

import contextlib
from typing import Callable

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
