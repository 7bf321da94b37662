"""The typer apps every command module registers on, and the options several share; kept apart so command modules
never import each other."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="arcvdm: few-shot learning with a frozen video diffusion model.")
datasets_app = typer.Typer(no_args_is_help=True, help="List and download the ARC datasets.")
codec_app = typer.Typer(no_args_is_help=True, help="Check the grid <-> frame codec.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print speed and memory figures.")
vision_app = typer.Typer(no_args_is_help=True, help="The few-shot dense vision suite.")
backbone_app = typer.Typer(no_args_is_help=True, help="Build video backbones (the pretrained mini).")
app.add_typer(datasets_app, name="datasets")
app.add_typer(codec_app, name="codec")
app.add_typer(bench_app, name="bench")
app.add_typer(vision_app, name="vision")
app.add_typer(backbone_app, name="backbone")

# `run`, `vision run`, `mini-bench` (arcvdm/environment.py `use_threads`; `bench` pins its own count).
THREADS = typer.Option(None, help="torch CPU threads per process (default: the cores other work leaves free, shared by "
                       "the workers; docs/benchmarks.md). Recorded in OUT/environment.json.")
