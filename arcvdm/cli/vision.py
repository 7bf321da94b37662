"""`arcvdm vision run FAMILY --data synthetic --shots 3 --preset vision-smoke --out results/NAME` and `arcvdm vision list`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from arcvdm.cli.app import THREADS, vision_app


@vision_app.command("list")
def list_families(names: bool = typer.Option(False, "--names", help="Only the names, one per line (for scripts).")) -> None:
    """The task families: what each maps, what data it needs, its metric and default video size."""
    from rich.console import Console
    from rich.table import Table

    from arcvdm.vision.families import FAMILIES, NEEDS

    if names:
        typer.echo("\n".join(FAMILIES.names()))
        return
    table = Table()
    table.add_column("family", no_wrap=True)
    for column in ("task", "data beyond pictures", "metric", "frames x H x W"):
        table.add_column(column)
    for name in FAMILIES.names():
        f = FAMILIES.get(name)
        table.add_row(name, f.description, "-" if f.needs == "image" else NEEDS[f.needs], f.primary, "x".join(map(str, f.size)))
    Console().print(table)


@vision_app.command("run")
def run(
    family: str = typer.Argument(..., help="A family from `arcvdm vision list`."),
    data: str = typer.Option("synthetic", help="synthetic, a COCO annotation JSON, a TinyImageNet folder, a folder of pictures or of input/ + target/."),
    shots: int = typer.Option(3, help="n: training pairs per problem."),
    seeds: int = typer.Option(3, help="Problems per setting, seeds 0..S-1 (different shots and LoRA init), averaged."),
    eval_items: int = typer.Option(20, "--eval", help="Held-out items measured at every checkpoint (the same for every seed)."),
    out: str = typer.Option(..., "--out", "-o", help="The run folder, e.g. results/NAME."),
    preset: str = typer.Option("paper", help="paper, paper-ablation (5 sampling steps for seg/pose), vision-smoke, a backbone recipe (paper-ltx, paper-wan), or a YAML/JSON config."),
    backbone: Optional[str] = typer.Option(None, help="Backbone name (tiny, tiny-ltx, tiny-wan, cogvideox1.5-5b-i2v, ltx-video-2b-i2v, wan2.1-i2v-14b-480p, ...) or a local pipeline folder."),
    category: str = typer.Option("dog", help="COCO categories, comma-separated: the first is the segmented one."),
    classes: Optional[str] = typer.Option(None, help="TinyImageNet WordNet ids, comma-separated (at most 7; default: the paper's 7 classes)."),
    images: Optional[Path] = typer.Option(None, help="COCO picture folder (default: <root>/val2017 beside annotations/)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip finished problems (default) or start over."),
    progress: bool = typer.Option(False, "--progress/--quiet", help="Show training progress bars."),
    trajectory: Optional[str] = typer.Option(None, help="video.trajectory: linear | quadratic | discrete | tiles.", rich_help_panel="Ablations"),
    lora_targets: Optional[str] = typer.Option(None, help="lora.targets: qk | vo | qkvo | qkvo-ff | block-linear | all-linear (peft's).", rich_help_panel="Ablations"),
    rank: Optional[int] = typer.Option(None, help="lora.rank (paper: 16-256).", rich_help_panel="Ablations"),
    alpha: Optional[int] = typer.Option(None, help="lora.alpha", rich_help_panel="Ablations"),
    steps: Optional[int] = typer.Option(None, help="train.steps (default: the preset's schedule).", rich_help_panel="Ablations"),
    eval_every: Optional[int] = typer.Option(None, help="train.eval_every", rich_help_panel="Ablations"),
    lr: Optional[float] = typer.Option(None, help="train.lr", rich_help_panel="Ablations"),
    sample_steps: Optional[int] = typer.Option(None, help="sample.steps: denoising steps.", rich_help_panel="Ablations"),
    frames: Optional[int] = typer.Option(None, help="video.frames (the backbone's rule: CogVideoX and LTX-Video 8k+1, Wan 4k+1).", rich_help_panel="Ablations"),
    height: Optional[int] = typer.Option(None, help="video.height (multiple of 16; 32 for LTX-Video and Wan2.2).", rich_help_panel="Ablations"),
    width: Optional[int] = typer.Option(None, help="video.width (multiple of 16; 32 for LTX-Video and Wan2.2).", rich_help_panel="Ablations"),
    device: Optional[str] = typer.Option(None, help="cuda, cuda:1, cpu, mps (default: automatic)."),
    dtype: Optional[str] = typer.Option(None, help="bf16, fp32 (default: bf16 on GPU, fp32 on CPU)."),
    threads: Optional[int] = THREADS,
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Any config field: --set augment.symmetries=4 --set augment.view_prompts=true (repeatable)."),
) -> None:
    """Few-shot one vision family: per seed, train a LoRA on n pairs and measure held-out items every eval_every steps."""
    from arcvdm.environment import use_threads

    from arcvdm.vision.families import FAMILIES
    from arcvdm.vision.presets import vision_config
    from arcvdm.vision.runner import run_vision

    overrides: dict[str, Any] = {
        "backbone": backbone, "video.trajectory": trajectory, "lora.targets": lora_targets, "lora.rank": rank, "lora.alpha": alpha,
        "train.steps": steps, "train.eval_every": eval_every, "train.lr": lr, "sample.steps": sample_steps,
        "video.frames": frames, "video.height": height, "video.width": width, "device": device, "dtype": dtype,
    }
    from arcvdm.cli.run import parse_set

    overrides.update(parse_set(set_ or []))
    config = vision_config(preset, FAMILIES.get(family), shots, overrides)
    use_threads(threads)
    summary = run_vision(
        family, data, shots, config, out, seeds=range(seeds), eval_count=eval_items, resume=resume,
        categories=[c.strip() for c in category.split(",") if c.strip()],
        classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
        images=images, progress=progress, log=typer.echo,
    )
    # A standard deviation needs two seeds: with one, the mean alone.
    means = ", ".join(f"{k} {m['mean']:.4g}" + (f" ± {m['std']:.2g}" if m["n"] > 1 else "") for k, m in summary["metrics"].items())
    typer.echo(f"{summary['done']}/{summary['problems']} problems done ({summary['skipped']} already), "
               f"{summary['failed']} failed; mean over seeds: {means or 'none'}; results in {out}")
    if summary["failed"]:
        raise typer.Exit(1)
