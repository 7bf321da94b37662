"""`arcvdm run DATASET --preset paper-arc --backbone NAME --out results/NAME`: solve a dataset into a run folder (resumes)."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer
import yaml

from arcvdm.cli.app import THREADS, app
from arcvdm.errors import ArcvdmError

SLURM = "SLURM (with --executor slurm)"


@app.command()
def run(
    dataset: str = typer.Argument(..., help="A dataset name (arc-agi-1/evaluation, conceptarc, ...) or a task file/folder."),
    out: str = typer.Option(..., "--out", "-o", help="The run folder, e.g. results/NAME."),
    preset: str = typer.Option("paper-arc", help="paper-arc, paper-conceptarc, paper-ltx, paper-wan, arcvdm-aug, mini, mini-aug, smoke, smoke-aug, smoke-arc, or a YAML/JSON config file."),
    backbone: Optional[str] = typer.Option(None, help="Backbone name (tiny, tiny-ltx, tiny-wan, cogvideox1.5-5b-i2v, ltx-video-2b-i2v, wan2.1-i2v-14b-480p, ...) or a local pipeline folder."),
    tasks: Optional[str] = typer.Option(None, help="Only these task ids, comma-separated."),
    limit: Optional[int] = typer.Option(None, help="Only the first N problems."),
    executor: str = typer.Option("local", help="local: this machine, one worker per visible GPU; slurm: one job array."),
    workers_per_gpu: Optional[int] = typer.Option(
        None, help="Problems at once per GPU (on CPU: processes), each worker its own process; with slurm, per array task."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip finished problems (default) or start over."),
    data_dir: Optional[str] = typer.Option(None, help="Where the datasets live (default: $ARCVDM_DATA, then the user cache)."),
    steps: Optional[int] = typer.Option(None, help="train.steps: the fixed training schedule.", rich_help_panel="Training"),
    eval_every: Optional[int] = typer.Option(None, help="train.eval_every: evaluate every V steps.", rich_help_panel="Training"),
    lr: Optional[float] = typer.Option(None, help="train.lr", rich_help_panel="Training"),
    batch_size: Optional[int] = typer.Option(None, help="train.batch_size", rich_help_panel="Training"),
    early_stop: Optional[bool] = typer.Option(None, "--early-stop/--no-early-stop",
                                              help="train.early_stop: stop once the attempts are decided.", rich_help_panel="Training"),
    seed: Optional[int] = typer.Option(None, help="train.seed and sample.seed.", rich_help_panel="Training"),
    rank: Optional[int] = typer.Option(None, help="lora.rank", rich_help_panel="Training"),
    alpha: Optional[int] = typer.Option(None, help="lora.alpha", rich_help_panel="Training"),
    lora_targets: Optional[str] = typer.Option(None, help="lora.targets: qk | vo | qkvo | qkvo-ff | block-linear | all-linear (peft's).", rich_help_panel="Training"),
    frames: Optional[int] = typer.Option(None, help="video.frames (the backbone's rule: CogVideoX and LTX-Video 8k+1, Wan 4k+1).", rich_help_panel="Video"),
    height: Optional[int] = typer.Option(None, help="video.height (multiple of 16; 32 for LTX-Video and Wan2.2).", rich_help_panel="Video"),
    width: Optional[int] = typer.Option(None, help="video.width (multiple of 16; 32 for LTX-Video and Wan2.2).", rich_help_panel="Video"),
    trajectory: Optional[str] = typer.Option(None, help="video.trajectory: discrete, linear, ...", rich_help_panel="Video"),
    layout: Optional[str] = typer.Option(None, help="codec.layout: centered | anchored | token-aligned.", rich_help_panel="Video"),
    sample_steps: Optional[int] = typer.Option(None, help="sample.steps: denoising steps.", rich_help_panel="Sampling"),
    guidance: Optional[float] = typer.Option(None, help="sample.guidance_scale (1 = no CFG).", rich_help_panel="Sampling"),
    attempts: Optional[int] = typer.Option(None, help="selection.attempts: k of pass@k.", rich_help_panel="Sampling"),
    selection: Optional[str] = typer.Option(None, help="selection.rule: paper | leave-one-out.", rich_help_panel="Sampling"),
    device: Optional[str] = typer.Option(None, help="cuda, cuda:1, cpu, mps (default: automatic).", rich_help_panel="Sampling"),
    dtype: Optional[str] = typer.Option(None, help="bf16, fp32 (default: bf16 on GPU, fp32 on CPU).", rich_help_panel="Sampling"),
    partition: Optional[str] = typer.Option(None, help="slurm.partition", rich_help_panel=SLURM),
    account: Optional[str] = typer.Option(None, help="slurm.account", rich_help_panel=SLURM),
    qos: Optional[str] = typer.Option(None, help="slurm.qos", rich_help_panel=SLURM),
    constraint: Optional[str] = typer.Option(None, help="slurm.constraint", rich_help_panel=SLURM),
    time_min: Optional[int] = typer.Option(None, help="slurm.time_min: per array task (workers_per_gpu problems).", rich_help_panel=SLURM),
    gpus_per_node: Optional[int] = typer.Option(None, help="slurm.gpus_per_node: GPUs per array task (0 on a partition without GPUs)", rich_help_panel=SLURM),
    cpus_per_task: Optional[int] = typer.Option(None, help="slurm.cpus_per_task", rich_help_panel=SLURM),
    mem_gb: Optional[int] = typer.Option(None, help="slurm.mem_gb", rich_help_panel=SLURM),
    array_parallelism: Optional[int] = typer.Option(None, help="slurm.array_parallelism: array tasks at once.", rich_help_panel=SLURM),
    threads: Optional[int] = THREADS,
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Any config field: --set sample.batch_size=2 (repeatable)."),
) -> None:
    """Solve every problem of a dataset: one JSON per problem under OUT/problems, resumable, then `arcvdm score OUT`."""
    from arcvdm.config import load_config
    from arcvdm.environment import use_threads
    from arcvdm.runner import run_dataset

    overrides: dict[str, Any] = {
        "backbone": backbone, "train.steps": steps, "train.eval_every": eval_every, "train.lr": lr,
        "train.batch_size": batch_size, "train.early_stop": early_stop, "train.seed": seed, "sample.seed": seed,
        "lora.rank": rank, "lora.alpha": alpha, "lora.targets": lora_targets,
        "video.frames": frames, "video.height": height, "video.width": width, "video.trajectory": trajectory,
        "codec.layout": layout, "sample.steps": sample_steps, "sample.guidance_scale": guidance,
        "selection.attempts": attempts, "selection.rule": selection, "device": device, "dtype": dtype,
        "slurm.partition": partition, "slurm.account": account, "slurm.qos": qos, "slurm.constraint": constraint,
        "slurm.time_min": time_min, "slurm.gpus_per_node": gpus_per_node, "slurm.cpus_per_task": cpus_per_task,
        "slurm.mem_gb": mem_gb, "slurm.array_parallelism": array_parallelism, "workers_per_gpu": workers_per_gpu,
    }
    overrides.update(parse_set(set_ or []))
    config = load_config(preset, overrides)
    if threads is not None or executor != "slurm":  # the compute nodes' load is not this machine's
        use_threads(threads, config.workers_per_gpu)
    task_ids = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    try:
        summary = run_dataset(dataset, config, out, tasks=task_ids, limit=limit, resume=resume,
                              executor=executor, data_dir=data_dir, log=typer.echo)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to resume (finished problems in {out}/problems are kept)", err=True)
        sys.exit(130)
    for key, status in summary.failures.items():
        typer.echo(f"  {key}: {status}", err=True)
    typer.echo(summary.line())
    raise typer.Exit(summary.exit_code)


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set a.b=VALUE` items as dotted overrides; VALUE is read as YAML (numbers, true/false, lists)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ArcvdmError(f"--set {item!r}: write KEY=VALUE with a dotted config key, e.g. --set train.lr=2e-4")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides
