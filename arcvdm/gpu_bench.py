"""The GPU benchmark (`arcvdm bench gpu`, `runners/gpu_bench.sh`): what a `paper-arc` problem costs on this GPU.

For every full-size random backbone registered (each `BACKBONES` name ending in `-random`: the real shapes, no
download), at the paper's video shape for its family: the LoRA training step time and MFU, peak memory with and
without gradient checkpointing, the time of one 50-step video, and the projected minutes per `paper-arc` problem
(fixed schedule, and stopped early at the second checkpoint). One JSON file, written after every backbone so a cut
run keeps what it measured, and a table. Without a CUDA device it stops at once with a one-line error.
"""

from __future__ import annotations

import datetime as _dt
import gc
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from arcvdm.errors import ArcvdmError

# (frames, height, width) of the paper's experiments per family: ARC on CogVideoX1.5 at 480x480; LTX-Video and
# Wan2.1 at their native 480p aspect (704 and 720 wide).
PAPER_SHAPES: dict[str, tuple[int, int, int]] = {
    "cogvideox": (9, 480, 480), "ltx": (9, 480, 704), "wan": (9, 480, 720), "wan2.2": (9, 480, 704),  # Wan2.2: sides x32
}

# Dense bf16 tensor-core peaks (fp32 accumulate) from the vendors' datasheets, TFLOP/s; the first name found in
# torch.cuda.get_device_name() wins. NVIDIA quotes Hopper and Ampere "with sparsity": dense is half of it
# (H100/H200 SXM 1,979 -> 989.5; NVL 1,671 -> 835.5; H100 PCIe 1,513 -> 756.5; A100 624 -> 312; L40S 733 -> 362.05).
# RTX 4090: 165.2 with fp32 accumulate (the Ada whitepaper; 330 is fp16 accumulate, which training does not use).
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("H200 NVL", 835.5),
    ("H200", 989.5),
    ("H100 NVL", 835.5),
    ("H100 PCIe", 756.5),
    ("H100", 989.5),
    ("A100", 312.0),
    ("L40S", 362.05),
    ("RTX 4090", 165.2),
]

PROBLEM = (3, 1)  # train pairs and test inputs of the projected problem (docs/benchmarks.md, the compute table)


def peak_tflops(device_name: str) -> float | None:
    """The bf16 dense peak of a GPU by its torch name (None when it is not in `PEAK_BF16_TFLOPS`)."""
    return next((tflops for key, tflops in PEAK_BF16_TFLOPS if key in device_name), None)


def random_backbones() -> list[str]:
    """Every registered full-size random stand-in, whichever families exist."""
    from arcvdm.backbones import BACKBONES

    return [name for name in BACKBONES if name.endswith("-random")]


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise ArcvdmError(f"bench gpu: no CUDA device here (torch {torch.__version__}, "
                          f"CUDA build {torch.version.cuda or 'none'}): run it on a machine with an NVIDIA GPU "
                          "and a CUDA build of torch")


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timed(device, out: list):
    """Append the wall time of the block to `out`, synchronising the GPU on both ends."""
    sync(device)
    start = time.perf_counter()
    yield
    sync(device)
    out.append(time.perf_counter() - start)


class TransformerClock:
    """Wall time spent inside the transformer's forward calls (hooks; synchronised on GPU)."""

    def __init__(self, backbone):
        self.device, self.seconds, self._start = backbone.device, 0.0, 0.0
        t = backbone.transformer
        self._handles = [t.register_forward_pre_hook(self._enter), t.register_forward_hook(self._exit)]

    def _enter(self, *_):
        sync(self.device)
        self._start = time.perf_counter()

    def _exit(self, *_):
        sync(self.device)
        self.seconds += time.perf_counter() - self._start

    def close(self):
        for h in self._handles:
            h.remove()


def _gib(n: int) -> float:
    return round(n / 2**30, 3)


def random_videos(config, n: int, seed: int = 0):
    """`n` uint8 videos of random pixels at config.video's shape: timing needs their size, not their content."""
    import numpy as np

    v = config.video
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (v.frames, v.height, v.width, 3), dtype=np.uint8) for _ in range(n)]


def measure_training(backbone, config, steps: int, peak: float | None, model_flops: float | None = None) -> dict:
    """Encode, then `steps` timed LoRA steps after an eager FLOP-counted step (and a compiling one with
    train.compile). MFU divides `model_flops` (default: this step's count) by the step time: pass the count without
    checkpointing for a checkpointed run, whose recomputation is not useful work. Each timed step also splits into
    the transformer's forward calls and the update (backward pass, clipping, optimizer step)."""
    from torch.utils.flop_counter import FlopCounterMode

    from arcvdm.device import peak_memory_bytes, reset_peak_memory
    from arcvdm.train import LoraTrainer

    device = backbone.device
    reset_peak_memory(device)
    encode: list[float] = []
    with timed(device, encode):
        trainer = LoraTrainer(backbone, random_videos(config, config.train.batch_size), config)
    backbone.use_compile(False)  # the counting mode sees eager operators only
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(*trainer.draw_batch())
    backbone.use_compile(config.train.compile)
    compiling: list[float] = []
    if config.train.compile:
        with timed(device, compiling):
            trainer.train_step(*trainer.draw_batch())  # compiles forward and backward
    times: list[float] = []
    updates: list[float] = []
    clock = TransformerClock(backbone)
    try:
        for _ in range(steps):  # LoraTrainer.train_step, with its update timed on its own
            batch = trainer.draw_batch()
            with timed(device, times):
                loss = trainer.loss(*batch)
                with timed(device, updates):
                    trainer.update(loss)
    finally:
        clock.close()
    step_s = sum(times) / steps
    flops = float(counter.get_total_flops())
    return {
        "gradient_checkpointing": config.train.gradient_checkpointing,
        "batch_size": config.train.batch_size,
        "lora_parameters": sum(p.numel() for p in trainer.params),
        "encode_s": round(encode[0], 4),
        "compile_s": round(compiling[0], 1) if compiling else None,
        "steps_timed": steps,
        "step_s": round(step_s, 4),
        "transformer_forward_s": round(clock.seconds / steps, 4),
        "update_s": round(sum(updates) / steps, 4),
        "step_flops": flops,
        "mfu": None if peak is None else round((model_flops or flops) / step_s / (peak * 1e12), 4),
        "peak_memory_gib": _gib(peak_memory_bytes(device)),
    }


def measure_sampling(backbone, config) -> dict:
    """One video at config.sample.steps (after a 2-step warm-up call), with the last trained adapter in place."""
    from arcvdm.device import peak_memory_bytes, reset_peak_memory
    from arcvdm.sample import generate

    device = backbone.device
    first = [random_videos(config, 1)[0][0]]
    generate(backbone, first, config.model_copy(update={"sample": config.sample.model_copy(update={"steps": 2})}))
    reset_peak_memory(device)
    times: list[float] = []
    with timed(device, times):
        generate(backbone, first, config)
    return {"steps": config.sample.steps, "video_s": round(times[0], 4), "peak_memory_gib": _gib(peak_memory_bytes(device))}


def projected_minutes(config, step_s: float, video_s: float) -> dict:
    """Minutes of transformer work per `paper-arc` problem (3 train pairs, 1 test input) from the measured step and
    video times: the fixed schedule, and early stopping at the second checkpoint (the earliest the rule can fire).
    Encoding, decoding and model loading are left out."""
    from arcvdm.flops import TRAIN_STEP_FORWARDS, guidance_factor, planned_forward_passes

    per_train_forward = step_s / (TRAIN_STEP_FORWARDS * config.train.batch_size)
    per_sample_forward = video_s / (config.sample.steps * guidance_factor(config.sample.guidance_scale))

    def minutes(passes) -> float:
        return round((passes.train * per_train_forward + passes.sample * per_sample_forward) / 60, 2)

    early = min(2 * config.train.eval_every, config.train.steps)
    return {"fixed": minutes(planned_forward_passes(config, *PROBLEM)),
            "early_stop_at_second_checkpoint": minutes(planned_forward_passes(config, *PROBLEM, train_steps=early))}


def measure_backbone(name: str, device: str = "cuda", shape: tuple[int, int, int] | None = None,
                     train_steps: int = 3, sample_steps: int = 50, compile: bool = False, force: bool = False,
                     peak: float | None = None) -> dict:
    """Every figure of one backbone at `shape` (default: its family's paper shape), on `device`.

    `device="cpu"` with a small backbone and shape is how the tests check the record's shape, not its figures.
    """
    import torch

    from arcvdm.backbones import BACKBONES, check_config, load_backbone
    from arcvdm.config import load_config

    family = BACKBONES.get(name).family
    if shape is None and family not in PAPER_SHAPES:
        raise ArcvdmError(f"bench gpu: no paper shape for family {family!r} ({name}): add it to PAPER_SHAPES "
                          "in arcvdm/gpu_bench.py")
    frames, height, width = shape or PAPER_SHAPES[family]
    config = check_config(load_config("paper-arc", {
        "backbone": name, "device": device, "video.frames": frames, "video.height": height, "video.width": width,
        "sample.steps": sample_steps, "sample.batch_size": 1, "train.compile": compile}))
    record: dict[str, Any] = {"backbone": name, "family": family, "shape": [frames, height, width], "error": None}
    backbone = load_backbone(name, config.device, config.dtype, force=force)
    try:
        record["dtype"] = str(backbone.dtype).removeprefix("torch.")
        record["parameters"] = sum(p.numel() for p in backbone.transformer.parameters())
        record["forward_flops"] = backbone.forward_flops(frames, height, width)
        for key, checkpointing in (("train", False), ("train_gradient_checkpointing", True)):
            run = config.model_copy(update={"train": config.train.model_copy(
                update={"gradient_checkpointing": checkpointing})})
            model_flops = record.get("train", {}).get("step_flops")
            record[key] = _or_out_of_memory(lambda: measure_training(backbone, run, train_steps, peak, model_flops))
        record["sample"] = _or_out_of_memory(lambda: measure_sampling(backbone, config))
        # paper-arc trains without checkpointing; with it only when that is what fits
        key = next((k for k in ("train", "train_gradient_checkpointing") if "step_s" in record[k]), None)
        video = record["sample"].get("video_s")
        record["projected_minutes_per_problem"] = None if key is None or video is None else {
            **projected_minutes(config, record[key]["step_s"], video),
            "gradient_checkpointing": key != "train", "excludes": "encoding, decoding, model loading"}
    finally:
        del backbone
        if compile:
            torch._dynamo.reset()  # compiled code holds the module: the next backbone needs its memory
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return record


def _or_out_of_memory(measure: Callable[[], dict]) -> dict:
    """A measurement, or {"error": "out of memory"} so the next one (e.g. with checkpointing) still runs."""
    import torch

    try:
        return measure()
    except torch.cuda.OutOfMemoryError:
        pass
    gc.collect()  # outside the except block: its traceback no longer holds the failed step's tensors
    torch.cuda.empty_cache()
    return {"error": "out of memory"}


def run_gpu_bench(out: str | Path, backbones: list[str] | None = None, budget_s: float = 420.0,
                  device: str = "cuda", log: Callable[[str], None] = print, **measure: Any) -> dict:
    """Measure each backbone in turn within `budget_s` seconds, writing `out` (JSON) after each one.

    A backbone is skipped, with the reason recorded, when less of the budget is left than the longest one took so
    far; a failing backbone records its error and the next one runs.
    """
    import torch

    from arcvdm.environment import environment_info, load_line, machine_load
    from arcvdm.io import atomic_write_json

    if device == "cuda":
        require_cuda()
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else device
    peak = peak_tflops(device_name) if device == "cuda" else None
    env = environment_info()
    report: dict[str, Any] = {
        "date": env["date"],
        "device": device_name,
        "peak_bf16_tflops": peak,
        "peak_source": "arcvdm/gpu_bench.py PEAK_BF16_TFLOPS (dense, datasheet)" if peak else None,
        "cuda": torch.version.cuda,
        "versions": env["versions"],
        "git_commit": env["git_commit"],
        "torch_threads": torch.get_num_threads(),
        "load": machine_load(),
        "problem": {"preset": "paper-arc", "train_pairs": PROBLEM[0], "test_inputs": PROBLEM[1]},
        "budget_s": budget_s,
        "backbones": [],
    }
    log(f"{device_name} | peak {peak or 'unknown'} TFLOP/s bf16 | {load_line()}")
    start = time.monotonic()
    longest = 0.0
    for name in backbones or random_backbones():
        began = time.monotonic()
        if budget_s - (began - start) < longest:
            record = {"backbone": name, "error": f"skipped: {began - start:.0f} s of the {budget_s:.0f} s budget spent"}
        else:
            log(f"measuring {name} ...")
            try:
                record = measure_backbone(name, device=device, peak=peak, **measure)
            except Exception as e:  # a refused build or a broken family: recorded, the next backbone runs
                record = {"backbone": name, "error": f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"}
            longest = max(longest, time.monotonic() - began)
        report["backbones"].append(record)
        report["elapsed_s"] = round(time.monotonic() - start, 1)
        report["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(out, report)
    return report


def table(report: dict) -> list[str]:
    """The report as aligned text lines, one per backbone."""

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rows = [("backbone", "shape", "step s", "MFU", "peak GiB", "peak GiB ckpt", "video s", "min/problem", "early")]
    for r in report["backbones"]:
        if r.get("error") and "train" not in r:
            rows.append((r["backbone"], r["error"], *[""] * 7))
            continue
        train, ckpt, sample = r["train"], r["train_gradient_checkpointing"], r["sample"]
        minutes = r.get("projected_minutes_per_problem") or {}
        mfu = train.get("mfu")
        rows.append((r["backbone"], "x".join(map(str, r["shape"])), fmt(train.get("step_s"), ".3f"),
                     "-" if mfu is None else f"{100 * mfu:.1f}%",
                     fmt(train.get("peak_memory_gib"), ".1f") if "error" not in train else train["error"],
                     fmt(ckpt.get("peak_memory_gib"), ".1f") if "error" not in ckpt else ckpt["error"],
                     fmt(sample.get("video_s"), ".2f"), fmt(minutes.get("fixed"), ".1f"),
                     fmt(minutes.get("early_stop_at_second_checkpoint"), ".1f")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
