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


# ---------------------------------------------------------------- CPU threads
# torch's default is one OpenMP thread per core, spinning while it waits at each barrier. Beside another CPU-bound
# job, a thread that loses its core stalls every barrier while the others spin: the same mini problem took 169-235 s
# with 2 threads on 2 shared cores against 34-36 s with 1 (issue 26). So the default takes only the cores other work
# leaves free. It keeps OpenMP's wait policy: a passive wait (OMP_WAIT_POLICY=passive) also survives a job that starts
# later, but costs about half again on an idle machine (docs/benchmarks.md). Results do not depend on the count
# (tests/test_threads.py).

BUSY_SAMPLE_S = 0.3  # how long the other work on our cores is watched before a run: a few scheduler periods
THREADS: dict = {}  # how this process's thread count was chosen (`use_threads`), recorded in environment.json


def usable_cores() -> list[int]:
    """The CPUs this process may run on (its affinity: taskset, cpusets, SLURM), not every CPU of the host."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _cpu_times(cores: list[int]) -> tuple[float, float] | None:
    """(busy, total) clock ticks summed over `cores` from /proc/stat; None where there is no /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted, busy, total = {f"cpu{c}" for c in cores}, 0.0, 0.0
    for line in lines:
        name, *ticks = line.split()
        if name in wanted:
            values = [float(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
            total += sum(values)
            busy += sum(values) - values[3] - values[4]
    return (busy, total) if total else None


def busy_cores(cores: list[int], seconds: float = BUSY_SAMPLE_S) -> float:
    """How many of `cores` other work keeps busy: their CPU time over `seconds` while this process sleeps (Linux),
    else the 1-minute load average (which also counts this machine's other cores and lags a new job by a minute)."""
    import time

    before = _cpu_times(cores)
    if before is None:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    time.sleep(seconds)
    after = _cpu_times(cores)
    if after is None or after[1] <= before[1]:
        return 0.0
    return len(cores) * (after[0] - before[0]) / (after[1] - before[1])


def default_threads(cores: int, busy: float, workers: int = 1) -> int:
    """The cores other work leaves free (a core counts free when less than half of it is taken), shared by the
    `workers` processes of a run; at least 1."""
    free = min(cores, max(0, int(cores - busy + 0.5)))
    return max(1, free // max(1, workers))


def use_threads(requested: int | None, workers: int = 1, environ=os.environ) -> dict:
    """Set torch's CPU threads in this process (the workers a run starts inherit the count, `arcvdm/executors.py`):
    --threads N, else the caller's OMP_NUM_THREADS, else `default_threads` from the cores this
    process may use and the load on them now. Returns (and keeps for environment.json) what was chosen and why."""
    from arcvdm.errors import ArcvdmError

    if requested is not None and requested < 1:
        raise ArcvdmError(f"--threads {requested}: give the number of CPU threads per process, at least 1")
    given = environ.get("OMP_NUM_THREADS", "")
    cores = usable_cores()
    if requested is not None:
        threads, why = requested, "--threads"
    elif given.isdigit() and int(given) > 0:
        threads, why = int(given), "OMP_NUM_THREADS"
    else:
        busy = busy_cores(cores)
        threads = default_threads(len(cores), busy, workers)
        why = f"default: {len(cores)} usable cores, {busy:.1f} busy with other work, {workers} worker(s)"
    import torch

    torch.set_num_threads(threads)
    THREADS.clear()
    THREADS.update({"threads": torch.get_num_threads(), "chosen_by": why, "usable_cores": len(cores),
                    "omp_wait_policy": environ.get("OMP_WAIT_POLICY", "unset (libgomp's default: spin a while, then sleep)")})
    return dict(THREADS)


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
        info["threads"] = dict(THREADS) or None  # how the count was chosen, when a command chose it (`use_threads`)
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
