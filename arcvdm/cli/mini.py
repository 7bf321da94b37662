"""The `mini` backbone's commands: `arcvdm backbone pretrain-mini --out DIR` and `arcvdm mini-bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from arcvdm.cli.app import app, backbone_app


@backbone_app.command("pretrain-mini")
def pretrain_mini(
    out: Path = typer.Option(..., "--out", help="New or empty folder for the pipeline (or an unfinished one to resume)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Scale the default step counts to about N minutes on an idle 2-core CPU."),
    seed: int = typer.Option(0, "--seed", help="Seeds the initial weights and every data draw."),
) -> None:
    """Pretrain the mini CogVideoX1.5-class pipeline on generated ARC-style videos (VAE, then transformer); resumable."""
    from arcvdm.pretrain.stages import Pretrainer, Recipe

    recipe = Recipe(seed=seed)
    if minutes is not None:
        recipe = recipe.scaled(minutes)
    path = Pretrainer(out, recipe).run()
    typer.echo(f"wrote {path}")


@backbone_app.command("vae-check")
def vae_check(
    dataset: str = typer.Argument(..., help="A dataset name (arcvdm datasets list) or a task file or folder."),
    backbone: str = typer.Option("mini", help="Registered name or local pipeline folder."),
    layout: str = typer.Option("centered", help="centered or anchored."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets."),
) -> None:
    """Exact round trips through the backbone's VAE and `codec.decode`: every grid the 64x64 canvas draws, held
    still, then every pair whose grids it draws, as the transition video a run trains on."""
    import json

    from arcvdm.backbones import load_backbone
    from arcvdm.datasets import load_dataset
    from arcvdm.pretrain.vae_check import round_trip_tasks

    pipe = load_backbone(backbone, "cpu", "fp32").pipe
    tasks = list(load_dataset(dataset, data_dir))
    results = {unit: round_trip_tasks(pipe.vae, tasks, layout, pairs=unit == "pairs").summary()  # type: ignore[arg-type]
               for unit in ("grids", "pairs")}
    typer.echo(json.dumps(results, indent=1))
    grids, pairs = results["grids"], results["pairs"]
    typer.echo(f"{dataset}: {grids['grids']} grids fit the 64x64 canvas ({grids['skipped_grids']} do not), "
               f"{grids['exact']} exact ({100 * grids['rate']:.2f}%); {pairs['pairs']} pairs as transitions, "
               f"{pairs['exact']} exact ({100 * pairs['rate']:.2f}%)")


@app.command("mini-bench")
def mini_bench(
    out: Path = typer.Option(..., "--out", "-o", help="Benchmark folder: tasks/ (generated), run/ (arcvdm run), bench.json."),
    tasks: int = typer.Option(100, "--tasks", help="Generated tasks, spread evenly over the families."),
    seed: int = typer.Option(1, "--seed", help="Task seed (the bench stream never meets pretraining's)."),
    preset: str = typer.Option("mini", help="Preset or YAML/JSON config file."),
    backbone: Optional[str] = typer.Option(None, help="Backbone (default: the preset's)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Any config field: --set lora.rank=16 (repeatable)."),
) -> None:
    """Generate ARC-style tasks from families inside and outside pretraining, solve them, score strict pass@k per side."""
    from arcvdm.cli.run import parse_set
    from arcvdm.config import load_config
    from arcvdm.pretrain.bench import run_bench

    overrides = {"backbone": backbone, **parse_set(set_ or [])}
    result = run_bench(out, load_config(preset, overrides), tasks, seed, log=typer.echo)
    for side in ("inside", "outside", "all"):
        r = result[side]
        typer.echo(f"{side:>8}: strict pass@{result['attempts']} {r['solved']}/{r['tasks']} = {100 * r['rate']:.1f}%"
                   f"  (train pairs exact at some checkpoint: {r['train_memorised']}/{r['tasks']};"
                   f" {r['forward_passes']:,} transformer forward passes, {r['forward_passes_fixed']:,} without early stopping;"
                   f" median {r['median_seconds_per_problem']} s per problem)")
