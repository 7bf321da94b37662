"""Backbone benchmarks: `arcvdm bench train --backbone tiny --frames 9 --height 64 --width 64`, `bench sample`, and
`bench gpu` (every full-size random backbone on a GPU, `arcvdm/gpu_bench.py`)."""

from __future__ import annotations

import typer

from arcvdm.cli.app import bench_app
from arcvdm.gpu_bench import TransformerClock, measure_training, random_videos, timed

BACKBONE = typer.Option("tiny", help="Registered name, local pipeline folder or hub id.")
FRAMES = typer.Option(9, help="Video frames (the backbone's rule: CogVideoX and LTX-Video 8k+1, Wan 4k+1).")
HEIGHT = typer.Option(64, help="Frame height in pixels (multiple of 16; 32 for LTX-Video and Wan2.2).")
WIDTH = typer.Option(64, help="Frame width in pixels (multiple of 16; 32 for LTX-Video and Wan2.2).")
DEVICE = typer.Option(None, help="cpu, cuda, cuda:N, mps (default: the best present).")
DTYPE = typer.Option(None, help="fp32 or bf16 (default: bf16 on GPU, fp32 on CPU).")
FORCE = typer.Option(False, "--force", help="Build a full-size random model even if its weights exceed free memory.")
THREADS = typer.Option(None, help="torch CPU threads, pinned for the whole benchmark (default: the machine's cores).")
COMPILE = typer.Option(False, "--compile", help="train.compile: torch.compile the transformer (compilation untimed).")


def _config(backbone, frames, height, width, device, dtype, **overrides):
    from arcvdm.backbones import check_config
    from arcvdm.config import load_config

    return check_config(load_config("paper-arc", {"backbone": backbone, "video.frames": frames, "video.height": height,
                                                  "video.width": width, "device": device, "dtype": dtype, **overrides}))


def _matmul_peak(device, dtype, n: int = 2048, reps: int = 5) -> float:
    """Achieved FLOP/s of a square matmul on this device and dtype: the 'peak' the transformer is compared with."""
    import torch

    n = 8192 if device.type == "cuda" else n
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        with timed(device, times):
            a @ b
    return 2 * n**3 / min(times)


def _peak_memory(device) -> str:
    from arcvdm.device import peak_memory_bytes

    where = "CUDA max allocated" if device.type == "cuda" else "peak RSS of the process"
    return f"{peak_memory_bytes(device) / 2**30:.2f} GiB ({where})"


def pin_threads(threads: int | None) -> int:
    """Fix torch's CPU thread count (default: every core) so figures from different runs compare."""
    import os

    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch.get_num_threads()


def _header(backbone, config) -> None:
    import torch

    from arcvdm.environment import load_line

    v = config.video
    typer.echo(f"{backbone!r}\nvideo {v.frames}x{v.height}x{v.width} | torch threads {torch.get_num_threads()} | "
               f"compile {'on' if config.train.compile else 'off'} | {load_line()}")


def _figures(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"  {name:<{width}}  {value}")


@bench_app.command("train")
def bench_train(
    backbone: str = BACKBONE,
    frames: int = FRAMES,
    height: int = HEIGHT,
    width: int = WIDTH,
    steps: int = typer.Option(5, help="Timed training steps (after one untimed, FLOP-counted step)."),
    rank: int = typer.Option(64, help="LoRA rank."),
    targets: str = typer.Option("qkvo", help="LoRA targets: qk, vo, qkvo, qkvo-ff, block-linear, all-linear (peft's)."),
    batch_size: int = typer.Option(2, help="Videos per step."),
    gradient_checkpointing: bool = typer.Option(False, help="Recompute activations in the backward pass."),
    device: str = DEVICE,
    dtype: str = DTYPE,
    force: bool = FORCE,
    threads: int = THREADS,
    compile: bool = COMPILE,
) -> None:
    """Time LoRA training steps: per step, share outside the transformer, peak memory, FLOPs and fraction of peak."""
    from arcvdm.backbones import load_backbone

    config = _config(backbone, frames, height, width, device, dtype, **{
        "lora.rank": rank, "lora.targets": targets, "train.batch_size": batch_size,
        "train.gradient_checkpointing": gradient_checkpointing, "train.compile": compile})
    pin_threads(threads)
    bb = load_backbone(config.backbone, config.device, config.dtype, force=force)
    _header(bb, config)
    m = measure_training(bb, config, steps, peak=None)
    step, step_flops = m["step_s"], m["step_flops"]
    in_transformer = m["transformer_forward_s"] + m["update_s"]  # the update is the backward pass, nearly all of it
    peak = _matmul_peak(bb.device, bb.dtype)
    forward = bb.forward_flops(frames, height, width)
    _figures([
        ("LoRA parameters", f"{m['lora_parameters']:,} (rank {rank}, {targets})"),
        ("encode once (VAE + prompt)", f"{m['encode_s']:.3f} s for {batch_size} videos, outside the loop"),
        *([("compilation", f"{m['compile_s']:.1f} s (first compiled step, untimed below)")] if compile else []),
        ("time per training step", f"{step:.4f} s (batch {batch_size}, mean of {steps})"),
        ("outside the transformer", f"{100 * max(step - in_transformer, 0.0) / step:.1f}% of a step"),
        ("peak memory", _peak_memory(bb.device)),
        ("FLOPs per forward", f"{forward:.4g} (batch 1, FlopCounterMode)"),
        ("FLOPs per training step", f"{step_flops:.4g} (forward + backward, batch {batch_size}, counted)"),
        ("achieved", f"{step_flops / step / 1e12:.4f} TFLOP/s"),
        ("device matmul peak", f"{peak / 1e12:.4f} TFLOP/s ({str(bb.dtype).removeprefix('torch.')} matmul measured now)"),
        ("fraction of peak", f"{100 * step_flops / step / peak:.1f}%"),
    ])


@bench_app.command("sample")
def bench_sample(
    backbone: str = BACKBONE,
    frames: int = FRAMES,
    height: int = HEIGHT,
    width: int = WIDTH,
    steps: int = typer.Option(4, help="Denoising steps per video."),
    batch_size: int = typer.Option(1, help="First frames per pipeline call."),
    rank: int = typer.Option(64, help="LoRA rank of the adapter sampled with (0 = base model)."),
    repeats: int = typer.Option(2, help="Timed pipeline calls (after one warm-up call)."),
    device: str = DEVICE,
    dtype: str = DTYPE,
    force: bool = FORCE,
    threads: int = THREADS,
    compile: bool = COMPILE,
) -> None:
    """Time sampling: per denoising step, share outside the transformer (VAE, scheduler), memory, FLOPs, fraction of peak."""
    from arcvdm.backbones import load_backbone
    from arcvdm.sample import generate
    from arcvdm.train import LoraTrainer

    config = _config(backbone, frames, height, width, device, dtype, **{
        "sample.steps": steps, "sample.batch_size": batch_size, "lora.rank": max(rank, 1), "train.compile": compile})
    pin_threads(threads)
    bb = load_backbone(config.backbone, config.device, config.dtype, force=force)
    _header(bb, config)
    videos = random_videos(config, batch_size)
    if rank > 0:
        LoraTrainer(bb, videos[:1], config)  # an adapter on the attention, as when sampling a checkpoint
    first_frames = [v[0] for v in videos]
    warm_up = []
    with timed(bb.device, warm_up):
        generate(bb, first_frames, config)  # warm-up (and compilation with --compile)
    clock = TransformerClock(bb)
    totals = []
    for _ in range(repeats):
        with timed(bb.device, totals):
            generate(bb, first_frames, config)
    clock.close()
    call = sum(totals) / repeats
    forward = bb.forward_flops(frames, height, width)
    achieved = forward * batch_size * steps * repeats / clock.seconds
    peak = _matmul_peak(bb.device, bb.dtype)
    _figures([
        ("warm-up call", f"{warm_up[0]:.1f} s{' (includes compilation)' if compile else ''}, untimed below"),
        ("time per pipeline call", f"{call:.4f} s ({batch_size} video(s), {steps} steps, mean of {repeats})"),
        ("time per sampling step", f"{call / steps:.4f} s"),
        ("outside the transformer", f"{100 * max(call - clock.seconds / repeats, 0.0) / call:.1f}% of a call (VAE etc.)"),
        ("peak memory", _peak_memory(bb.device)),
        ("FLOPs per forward", f"{forward:.4g} (batch 1, FlopCounterMode)"),
        ("achieved in the transformer", f"{achieved / 1e12:.4f} TFLOP/s"),
        ("device matmul peak", f"{peak / 1e12:.4f} TFLOP/s ({str(bb.dtype).removeprefix('torch.')} matmul measured now)"),
        ("fraction of peak", f"{100 * achieved / peak:.1f}%"),
    ])


@bench_app.command("gpu")
def bench_gpu(
    out: str = typer.Option("results/gpu-bench.json", "--out", "-o", help="The JSON file written (after every backbone)."),
    backbones: str = typer.Option(None, help="Comma-separated names (default: every registered *-random backbone)."),
    budget_s: float = typer.Option(420.0, help="Skip the backbones left once the budget cannot hold another one."),
    train_steps: int = typer.Option(3, help="Timed training steps per setting (after the untimed counted step)."),
    sample_steps: int = typer.Option(50, help="Denoising steps of the timed video."),
    compile: bool = COMPILE,
    threads: int = THREADS,
    force: bool = FORCE,
) -> None:
    """What a paper-arc problem costs on this GPU: per full-size random backbone at the paper's shape, training step
    time and MFU, peak memory with and without gradient checkpointing, a 50-step video, projected minutes per problem."""
    from arcvdm.gpu_bench import require_cuda, run_gpu_bench, table

    require_cuda()  # before anything is loaded: one line and exit 2 on a machine without a GPU
    pin_threads(threads)
    names = [n.strip() for n in backbones.split(",") if n.strip()] if backbones else None
    report = run_gpu_bench(out, names, budget_s, log=typer.echo, train_steps=train_steps, sample_steps=sample_steps,
                           compile=compile, force=force)
    for line in table(report):
        typer.echo(line)
    typer.echo(f"written {out}")
    if any(r.get("error") for r in report["backbones"]):
        raise typer.Exit(1)
