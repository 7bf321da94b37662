"""The `mini` backbone's commands: `arcvdm backbone pretrain-mini --out DIR` and `arcvdm mini-bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from arcvdm.cli.app import THREADS, app, backbone_app


@backbone_app.command("pretrain-mini")
def pretrain_mini(
    out: Path = typer.Option(..., "--out", help="New or empty folder for the pipeline (or an unfinished one to resume)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Scale the recipe's step counts to about N minutes of the machine it is sized for."),
    seed: int = typer.Option(0, "--seed", help="Seeds the initial weights and every data draw."),
    recipe_name: str = typer.Option("cpu", "--recipe", help="cpu (the shipped mini: 2 cores, about 30 min) or gpu (one H200, at most 7 min)."),
    device: str = typer.Option("cpu", "--device", help="Where the weights train: cpu, cuda, cuda:N."),
    workers: int = typer.Option(0, "--workers", help="Processes generating the training videos ahead of use (0: the main process; GPU: the cores less one)."),
    toy: bool = typer.Option(False, "--toy", help="The recipe at toy size (a step or two per stage): checks it runs end to end."),
    fresh_videos: Optional[bool] = typer.Option(None, "--fresh-videos/--pooled-videos", help="Stage 2: new videos every step, or a pool reused per chunk (default: the recipe's)."),
    answer_weight: Optional[float] = typer.Option(None, "--answer-weight", help="Stage 2's loss weight on the answer's (last) latent frame; 1 = unweighted."),
    ema_decay: Optional[float] = typer.Option(None, "--ema-decay", help="Save an EMA of the transformer's weights with this decay (0: the live weights)."),
    caption_share: Optional[float] = typer.Option(None, "--caption-share", help="Share of stage-2 tasks prompted with their rule's name; the rest get the neutral prompt."),
    canvas: Optional[int] = typer.Option(None, "--canvas", help="Square canvas in px (default: the recipe's, cpu 64, gpu 80); the transformer's rotary table covers it."),
    layout: Optional[str] = typer.Option(None, "--layout", help="centered (the cpu recipe's: a quarter anchored, as shipped) or token-aligned (the gpu recipe's: one cell per 8-px token; needs --canvas 80)."),
    vae_from: Optional[Path] = typer.Option(None, "--vae-from", help="Keep this mini folder's VAE and skip its stages (1 and 1b): the transformer's stage alone."),
    layers: Optional[int] = typer.Option(None, "--layers", help="The transformer's layers (default: the recipe's, cpu 6, gpu 9)."),
    heads: Optional[int] = typer.Option(None, "--heads", help="Its attention heads (default: the recipe's, 4)."),
    head_dim: Optional[int] = typer.Option(None, "--head-dim", help="Each head's width (default: the recipe's, cpu 32, gpu 64)."),
) -> None:
    """Pretrain the mini CogVideoX1.5-class pipeline on generated ARC-style videos (VAE, then transformer); resumable."""
    from dataclasses import replace

    from arcvdm.errors import ArcvdmError
    from arcvdm.io import writable_folder
    from arcvdm.pretrain.stages import RECIPES, Pretrainer, check_geometry

    if minutes is not None and not minutes > 0:
        raise ArcvdmError(f"--minutes {minutes:g}: give a positive number of minutes, e.g. --minutes 10")
    if recipe_name not in RECIPES:
        raise ArcvdmError(f"--recipe {recipe_name!r}: use one of {', '.join(RECIPES)}")
    options = {"fresh_videos": fresh_videos, "answer_weight": answer_weight, "ema_decay": ema_decay,
               "caption_share": caption_share, "canvas": canvas, "layout": layout,
               "vae_from": None if vae_from is None else str(vae_from), "transformer_layers": layers,
               "transformer_heads": heads, "transformer_head_dim": head_dim}
    if answer_weight is not None and answer_weight <= 0:
        raise ArcvdmError(f"--answer-weight {answer_weight:g}: a loss weight must be positive (1 = unweighted)")
    for name, value in (("--ema-decay", ema_decay), ("--caption-share", caption_share)):
        if value is not None and not 0 <= value < (1 if name == "--ema-decay" else 1.000001):
            raise ArcvdmError(f"{name} {value:g}: give a value from 0 to {'below 1' if name == '--ema-decay' else '1'}")
    for name, value in (("--layers", layers), ("--heads", heads), ("--head-dim", head_dim)):
        if value is not None and value < 1:
            raise ArcvdmError(f"{name} {value}: give a positive whole number, e.g. {name} 8")
    if vae_from is not None and not (vae_from / "vae" / "config.json").is_file():
        raise ArcvdmError(f"--vae-from {vae_from}: no vae/config.json there; give a pretrained mini folder, "
                          "e.g. arcvdm/backbones/mini")
    recipe = replace(RECIPES[recipe_name](seed), **{k: v for k, v in options.items() if v is not None})
    check_geometry(recipe.canvas, recipe.layout)
    writable_folder(out)  # before minutes of training, not after them
    if minutes is not None:
        recipe = recipe.scaled(minutes)
    if toy:
        recipe = recipe.toy()
    flags = {"--seed": seed, "--recipe": recipe_name, "--device": device, "--workers": workers or None,
             "--minutes": minutes, "--answer-weight": answer_weight, "--ema-decay": ema_decay,
             "--caption-share": caption_share, "--canvas": canvas, "--layout": layout,
             "--vae-from": vae_from, "--layers": layers, "--heads": heads, "--head-dim": head_dim}
    command = " ".join(["arcvdm backbone pretrain-mini --out DIR", *(f"{k} {v}" for k, v in flags.items() if v is not None),
                        *(["--fresh-videos" if fresh_videos else "--pooled-videos"] if fresh_videos is not None else []),
                        *(["--toy"] if toy else [])])
    path = Pretrainer(out, recipe, device=device, workers=workers, command=command).run()
    typer.echo(f"wrote {path}")


@backbone_app.command("vae-check")
def vae_check(
    dataset: str = typer.Argument(..., help="A dataset name (arcvdm datasets list) or a task file or folder."),
    backbone: str = typer.Option("mini", help="Registered name or local pipeline folder."),
    layout: str = typer.Option("centered", help="centered, anchored or token-aligned (the mini's 8-px token)."),
    size: int = typer.Option(64, "--size", help="The square canvas in px (a mini pretrained token-aligned draws 80)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets."),
) -> None:
    """Exact round trips through the backbone's VAE and `codec.decode`: every grid the canvas draws, held
    still, then every pair whose grids it draws, as the transition video a run trains on."""
    import json

    from arcvdm.backbones import load_backbone
    from arcvdm.datasets import load_dataset
    from arcvdm.pretrain.vae_check import round_trip_tasks

    pipe = load_backbone(backbone, "cpu", "fp32").pipe
    tasks = list(load_dataset(dataset, data_dir))
    results = {unit: round_trip_tasks(pipe.vae, tasks, layout, pairs=unit == "pairs", size=size).summary()  # type: ignore[arg-type]
               for unit in ("grids", "pairs")}
    typer.echo(json.dumps(results, indent=1))
    grids, pairs = results["grids"], results["pairs"]
    typer.echo(f"{dataset}: {grids['grids']} grids fit the {size}x{size} canvas ({grids['skipped_grids']} do not), "
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
    threads: Optional[int] = THREADS,
) -> None:
    """Generate ARC-style tasks from families inside and outside pretraining, solve them, score strict pass@k per side."""
    from arcvdm.environment import use_threads
    from arcvdm.errors import ArcvdmError

    if tasks < 1:
        raise ArcvdmError(f"--tasks {tasks}: give the number of tasks to generate, at least 1 (default 100)")
    from arcvdm.cli.run import parse_set
    from arcvdm.config import load_config
    from arcvdm.pretrain.bench import run_bench
    from arcvdm.pretrain.generator import FAMILIES

    overrides = {"backbone": backbone, **parse_set(set_ or [])}
    config = load_config(preset, overrides)
    use_threads(threads, config.workers_per_gpu)
    result = run_bench(out, config, tasks, seed, log=typer.echo)
    for side in ("inside", "outside", "all"):
        typer.echo(f"{side:>8}: {side_line(result[side], result['attempts'], tasks, len(FAMILIES))}")


def share(counts: list[int]) -> str:
    right, of = counts
    return f"{100 * right / of:.1f}%" if of else "none"


def side_line(r: dict, attempts: int, tasks: int, families: int) -> str:
    """One side of the bench in words: its score, or why it has none."""
    if not r["tasks"]:
        return f"no tasks (--tasks {tasks} reaches the first {tasks} of {families} families: give --tasks {families} or more)"
    median = r["median_seconds_per_problem"]
    return (f"strict pass@{attempts} {r['solved']}/{r['tasks']} = {100 * r['rate']:.1f}%"
            f"  ({r['determined']}/{r['tasks']} determined by their train pairs;"
            f" test outputs exact {r['test_outputs_exact']}/{r['test_outputs']}"
            f" (at least 90% / 75% of cells right {r['test_outputs_cells_90']} / {r['test_outputs_cells_75']};"
            f" of the cells the rule keeps {share(r['test_cells_kept'])} right, of those it changes"
            f" {share(r['test_cells_changed'])}),"
            f" of those whose input shows a colour"
            f" no train input shows {r['unseen_colour_exact']}/{r['unseen_colour_outputs']};"
            f" train pairs exact at some checkpoint: {r['train_memorised']}/{r['tasks']};"
            f" {r['forward_passes']:,} transformer forward passes, {r['forward_passes_fixed']:,} without early stopping"
            f" and {r['forward_passes_early_stop']:,} with it;"
            + (" no problem finished)" if median is None else f" median {median} s per problem)"))
