"""Codec commands: `arcvdm codec check DATASET_OR_PATH`, `arcvdm render TASK --out DIR`, `arcvdm bench codec DATASET`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from arcvdm.cli.app import app, bench_app, codec_app
from arcvdm.errors import ArcvdmError

if TYPE_CHECKING:
    from arcvdm.codec_check import CheckResult, Perturbation

DataDir = typer.Option(None, "--data-dir", help="Folder holding the datasets (before $ARCVDM_DATA and the user cache).")
Token = typer.Option(None, "--token", help="token-aligned: the backbone's token side in px, VAE spatial factor x patch "
                     "(Backbone.token_size: mini 8, CogVideoX1.5 and Wan2.1 16, LTX-Video and Wan2.2 32).")


def _layout(value: str, token: int | None = None) -> str:
    from arcvdm.codec import LAYOUTS

    if value not in LAYOUTS:
        raise ArcvdmError(f"--layout {value!r}: use one of {', '.join(LAYOUTS)}")
    if value == "token-aligned" and (token is None or token < 1):
        raise ArcvdmError("--layout token-aligned needs --token PX, the backbone's token side (VAE spatial factor x "
                          "patch: mini 8, CogVideoX1.5 and Wan2.1 16, LTX-Video and Wan2.2 32)")
    return value


@codec_app.command("check")
def check(
    dataset: str = typer.Argument(..., help="A dataset name (arcvdm datasets list) or a task file or folder."),
    layout: str = typer.Option("centered", "--layout", help="centered (decoding is given the size), anchored (size read from the frame) or token-aligned (cells on whole --token px tokens)."),
    token: Optional[int] = Token,
    noise: float = typer.Option(0.0, "--noise", help="Gaussian pixel noise sigma (0-255 scale)."),
    shift: int = typer.Option(0, "--shift", help="Shift each channel by +-SHIFT (random signs per grid)."),
    jpeg: Optional[int] = typer.Option(None, "--jpeg", help="Re-encode each frame as JPEG at this quality."),
    height: int = typer.Option(480, "--height"),
    width: int = typer.Option(480, "--width"),
    seed: int = typer.Option(0, "--seed"),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: CPU count)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    show_failures: int = typer.Option(20, "--failures", help="How many failures to list."),
    data_dir: Optional[str] = DataDir,
) -> None:
    """Render every grid with its task's plan, perturb, decode: prints `N grids, N exact` and the failures (exit 1 if any)."""
    from arcvdm.codec_check import Perturbation, check_tasks
    from arcvdm.datasets import load_dataset
    from arcvdm.render import check_canvas

    check_canvas(height, width)
    perturbation = Perturbation(noise=noise, shift=shift, jpeg=jpeg)  # refused before the dataset loads
    layout = _layout(layout, token)
    tasks = load_dataset(dataset, data_dir)
    result = check_tasks(list(tasks), layout, perturbation, height, width, seed, workers, token)  # type: ignore[arg-type]
    if as_json:
        out = {"dataset": dataset, "layout": layout, **({"token": token} if token else {}), "perturbation": str(perturbation), "height": height, "width": width,
               "seed": seed, "grids": result.grids, "exact": result.exact, "failures": result.failures,
               "malformed_files": [str(e) for e in tasks.errors]}
        typer.echo(json.dumps(out, indent=1))
    else:
        _print_check(dataset, layout, perturbation, result, tasks.errors, show_failures)
    if result.exact < result.grids:
        raise typer.Exit(1)  # usable as a gate in scripts


def _print_check(dataset: str, layout: str, perturbation: Perturbation, result: CheckResult, errors: list, show_failures: int) -> None:
    typer.echo(f"{dataset} | {layout} | {perturbation}: {result.summary()}")
    for error in errors:
        typer.echo(f"skipped malformed file: {error}")
    if result.failures:
        table = Table("task", "pair", "reason", title=f"{len(result.failures)} failure{'s' if len(result.failures) != 1 else ''}")
        for failure in result.failures[:show_failures]:
            table.add_row(failure["task"], failure["pair"], failure["reason"])
        Console().print(table)


@app.command()
def render(
    task: str = typer.Argument(..., help="A task file or DATASET:TASK_ID."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG frames and GIF videos."),
    layout: str = typer.Option("centered", "--layout"),
    token: Optional[int] = Token,
    height: int = typer.Option(480, "--height"),
    width: int = typer.Option(480, "--width"),
    trajectory: str = typer.Option("discrete", "--trajectory", help="linear, quadratic, square-root, discrete, tiles."),
    frames: int = typer.Option(9, "--frames", help="Frames per video, 8k+1."),
    seed: int = typer.Option(0, "--seed", help="Seed of the tiles order."),
    data_dir: Optional[str] = DataDir,
) -> None:
    """Write each pair's frames as PNG and its transition video as GIF."""
    from arcvdm.codec import plan_for_task, render as render_grid
    from arcvdm.datasets import load_task_spec
    from arcvdm.io import writable_folder
    from arcvdm.render import check_canvas, save_gif, save_png
    from arcvdm.trajectories import make_video

    check_canvas(height, width)
    t = load_task_spec(task, data_dir)
    writable_folder(out)
    plan = plan_for_task(t, _layout(layout, token), height, width, token)  # type: ignore[arg-type]
    written = 0
    for split, pairs in (("train", t.train), ("test", t.test)):
        for i, pair in enumerate(pairs):
            first = render_grid(pair.input, plan)
            save_png(first, out / f"{split}{i}-input.png")
            written += 1
            if pair.output is not None:
                last = render_grid(pair.output, plan)
                save_png(last, out / f"{split}{i}-output.png")
                save_gif(make_video(first, last, frames, trajectory, seed), out / f"{split}{i}.gif")
                written += 2
    typer.echo(f"{t.id}: {written} files in {out} ({layout}, {plan.cell} px cells, {height}x{width}, {trajectory}, {frames} frames)")


@bench_app.command("codec")
def bench_codec(
    dataset: str = typer.Argument(..., help="A dataset name or a task folder."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N tasks."),
    token: int = typer.Option(16, "--token", help="The token-aligned layout's token side in px (16: CogVideoX1.5, Wan2.1)."),
    data_dir: Optional[str] = DataDir,
) -> None:
    """Render and decode time per grid, every layout, against a per-cell Python reference decoder (single process)."""
    from arcvdm.codec import LAYOUTS, SHAPE_GIVEN, decode, plan_for_task, render as render_grid
    from arcvdm.codec_check import labelled_grids, reference_decode
    from arcvdm.datasets import load_dataset
    from arcvdm.environment import load_line

    tasks = list(load_dataset(dataset, data_dir))[:limit]
    table = Table("layout", "grids", "render ms/grid", "decode ms/grid", "reference ms/grid", "reference/decode", "agree",
                  title=f"codec speed on {dataset} ({len(tasks)} tasks)")
    for layout in LAYOUTS:
        t_render = t_decode = t_reference = 0.0
        grids = agree = 0
        for task in tasks:
            try:
                plan = plan_for_task(task, layout, token=token)  # type: ignore[arg-type]
            except ArcvdmError:  # token-aligned at 32-px tokens: grids over 15 a side do not fit 480x480
                continue
            for _, grid in labelled_grids(task):
                start = time.perf_counter()
                frame = render_grid(grid, plan)
                rendered = time.perf_counter()
                decoded = decode(frame, plan, grid.shape if layout in SHAPE_GIVEN else None)
                decoded_at = time.perf_counter()
                reference = reference_decode(frame, plan, grid.shape)
                t_reference += time.perf_counter() - decoded_at
                t_render += rendered - start
                t_decode += decoded_at - rendered
                grids += 1
                g = decoded.grid
                agree += g is not None and g.shape == reference.shape and bool((g.array == reference).all())
        ms = lambda s: f"{1000 * s / max(grids, 1):.3f}"  # noqa: E731
        table.add_row(layout, str(grids), ms(t_render), ms(t_decode), ms(t_reference), f"{t_reference / max(t_decode, 1e-12):.1f}x", f"{agree}/{grids}")
    Console().print(table)
    typer.echo("decode: anchored reads the size from the frame; the reference is always given the size.")
    typer.echo(load_line())
