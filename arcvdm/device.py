"""Device and dtype, chosen in one place: cuda > mps > cpu; bf16 on accelerators, fp32 on CPU; both overridable.
Also the one place that measures peak memory (CUDA peak allocated, or the process's peak RSS on CPU)."""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch

from arcvdm.errors import ArcvdmError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: `device` when given (e.g. "cuda:1", "cpu", "meta"), else the best one present."""
    if device is not None:
        try:
            return torch.device(device)
        except RuntimeError:
            raise ArcvdmError(f"device {device!r} is not a torch device (use cpu, cuda, cuda:N, mps or meta)") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype of the frozen weights: `dtype` when given, else bf16 on an accelerator and fp32 on CPU.

    fp16 on CPU runs at well under 1 GFLOP/s on the machines we measured, so CPU defaults to fp32.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        try:
            return DTYPES[dtype]
        except KeyError:
            raise ArcvdmError(f"dtype {dtype!r} is not supported (use one of {', '.join(DTYPES)})") from None
    return torch.float32 if device.type in ("cpu", "meta") else torch.bfloat16


def reset_peak_memory(device: Any) -> None:
    """Start a new peak for `peak_memory_bytes` (CUDA only: a process's peak RSS cannot be reset)."""
    if getattr(device, "type", None) == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: Any) -> int:
    """Peak GPU memory allocated since the last reset; on CPU the process's peak RSS since it started."""
    if getattr(device, "type", None) == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux
