"""What a result was produced with: package versions, git commit, device; saved as environment.json in every run."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("arcvdm", "torch", "diffusers", "peft", "transformers", "accelerate", "numpy", "submitit")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def machine_load() -> dict:
    """The 1-minute load average against the cores: above them, other processes compete and timings are unreliable."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    return {"load_average_1min": round(load, 2), "cores": cores, "busy": load > cores}


def load_line() -> str:
    """The load average to print next to timings, with a warning when other processes compete for the cores."""
    m = machine_load()
    line = f"load average {m['load_average_1min']:.1f} on {m['cores']} cores"
    if m["busy"]:
        line += " | UNRELIABLE: the machine is busy (load above the cores); rerun the benchmark on an idle machine"
    return line


def attention_info(device, dtype) -> dict:
    """The attention kernels a run gets: diffusers' dispatcher backend (families that call `dispatch_attention_fn`)
    and the kernel torch's `scaled_dot_product_attention` picks on `device` in `dtype` (what CogVideoX's processor
    calls), probed on a [1, 2, 256, 64] query; the SDPA kernels enabled are listed too."""
    import torch

    info: dict = {}
    try:
        from diffusers.models.attention_dispatch import _AttentionBackendRegistry

        info["diffusers_backend"] = str(_AttentionBackendRegistry.get_active_backend()[0].value)
    except (ImportError, AttributeError):  # diffusers without the dispatcher
        info["diffusers_backend"] = None
    try:
        from torch.nn.attention import SDPBackend

        q = torch.zeros(1, 2, 256, 64, device=device, dtype=dtype)
        info["sdpa_kernel"] = SDPBackend(torch._fused_sdp_choice(q, q, q)).name  # torch's own choice, private API
    except (AttributeError, AssertionError, RuntimeError, ValueError):  # no such device here, older torch
        info["sdpa_kernel"] = None
    cuda = torch.backends.cuda
    info["sdpa_enabled"] = {"flash": cuda.flash_sdp_enabled(), "mem_efficient": cuda.mem_efficient_sdp_enabled(),
                            "cudnn": cuda.cudnn_sdp_enabled(), "math": cuda.math_sdp_enabled()}
    info["cuda_flash_attention_built"] = cuda.is_flash_attention_available()
    return info


def environment_info(config=None) -> dict:
    """Versions, commit and machine; with a RunConfig also the device and dtype it resolves to on this machine and
    the attention kernels they get (SLURM workers run elsewhere: each problem file's `worker` names its device)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "versions": versions,
        "argv": sys.argv,
    }
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
        if config is not None:
            from arcvdm.device import pick_device, pick_dtype

            device = pick_device(config.device)
            dtype = pick_dtype(device, config.dtype)
            info["device"] = str(device)
            info["dtype"] = str(dtype).removeprefix("torch.")  # frozen weights; LoRA weights train in fp32
            info["attention"] = attention_info(device, dtype)
    except ImportError:
        pass
    return info
