"""`arcvdm inspect RUN TASK_ID`: one problem in the terminal, in colour: train pairs, test, answers and every checkpoint."""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.columns import Columns
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from arcvdm.codec import PALETTE
from arcvdm.formats import parse_attempt
from arcvdm.report.tables import plural
from arcvdm.tasks import Grid, Task

MAX_VOTES = 8  # the most voted grids shown per test input (hundreds of views can give hundreds of grids)
OK, WRONG = "[green]✓[/green]", "[red]✗[/red]"


def grid_text(grid: Grid, colour: bool = True) -> Text:
    """Two spaces per cell on the cell's palette colour; the colour digits when the output has no colour (a pipe)."""
    text = Text()
    for r, row in enumerate(grid.array):
        for v in row:
            red, green, blue = PALETTE[v]
            text.append("  ", style=f"on rgb({red},{green},{blue})") if colour else text.append(f"{v} ")
        if r < grid.shape[0] - 1:
            text.append("\n")
    return text


def grid_panel(title: str, value: Any, truth: Grid | None = None, colour: bool = True) -> Panel:
    """A grid (or the reason there is none) titled with ✓/✗ against `truth` when given."""
    grid, issue = parse_attempt(value, title)
    mark = "" if truth is None else (f" {OK}" if grid is not None and grid == truth else f" {WRONG}")
    if grid is None:
        body: Any = Text(issue or "no prediction", style="dim")
    else:
        body = Group(grid_text(grid, colour), Text(f"{grid.shape[0]}×{grid.shape[1]}", style="dim"))
    return Panel(body, title=f"{title}{mark}", expand=False)


def vote_table(j: int, votes: list[dict[str, Any]], attempts: dict[str, Any], truth: Grid | None) -> Table:
    """One row per voted grid (most votes first): its count, untransformed views, last step, shape, ✓/✗, attempt."""
    table = Table("#", "votes", "untransformed", "last step", "shape", "right", "attempt", title=f"test {j} votes",
                  title_justify="left", box=None, pad_edge=False)
    for n, vote in enumerate(votes[:MAX_VOTES], 1):
        grid, issue = parse_attempt(vote.get("grid"), f"vote {n}")
        became = ", ".join(key for key, value in sorted(attempts.items()) if grid is not None and value == grid.root)
        table.add_row(str(n), str(vote.get("count", "?")), str(vote.get("identity_votes", "-")), str(vote.get("last_step", "-")),
                      f"{grid.shape[0]}×{grid.shape[1]}" if grid is not None else (issue or "none"),
                      "" if truth is None else (OK if grid is not None and grid == truth else WRONG), became)
    if len(votes) > MAX_VOTES:
        table.caption = f"and {len(votes) - MAX_VOTES} more grids with fewer votes"
    return table


def selection_words(selection: Any) -> str:
    """A problem file's `selection` entry (arcvdm/selection.py `Selection.to_json`) as a sentence: `inspect` and the
    HTML report."""
    if not isinstance(selection, dict):
        return "not recorded"
    rule, k = selection.get("rule"), selection.get("k")
    words = [f"{'the paper rule' if rule == 'paper' else rule or 'unknown rule'}, {plural(k, 'attempt')} per test input"]
    solved = selection.get("solved_train_at")
    words.append(f"every train pair exact from step {solved}" if solved is not None else "the train pairs never all exact")
    if rule == "leave-one-out":
        held = selection.get("solved_held_out_at")
        words.append(f"held-out pairs exact at two checkpoints in a row by step {held}" if held is not None
                     else "held-out pairs never exact twice in a row (the last checkpoints lead)")
    steps = [str(s) for s in selection.get("steps") or []]
    if steps:
        words.append("attempts drawn first from step" + ("s " if len(steps) > 1 else " ") + ", ".join(steps))
    return "; ".join(words)


def print_problem(task: Task, record: dict[str, Any] | None, console: Console, missing_note: str | None = None) -> None:
    """The whole problem; `missing_note` says why there is no record (e.g. an unreadable problem file)."""
    draw = partial(grid_panel, colour=console.color_system is not None)
    console.rule(f"{task.id}" + (f" · {task.concept}" if task.concept else ""))
    for i, pair in enumerate(task.train):
        console.print(Columns([draw(f"train {i} input", pair.input.root), draw(f"train {i} output", pair.output.root)]))
    if record is None:
        console.print(f"[yellow]{missing_note or 'this run has no result for this problem'}[/yellow]", highlight=False, soft_wrap=True)
    else:
        status = record.get("status", "?")
        steps = record.get("train_steps_run")
        console.print(f"status: {status} · steps run: {steps} · selection: {selection_words(record.get('selection'))}",
                      highlight=False)
    for j, pair in enumerate(task.test):
        panels = [draw(f"test {j} input", pair.input.root), draw(f"test {j} ground truth", pair.output.root if pair.output else None)]
        attempts = (record or {}).get("attempts") or []
        if j < len(attempts) and isinstance(attempts[j], dict):
            panels += [draw(f"{key}", value, pair.output) for key, value in sorted(attempts[j].items())]
        console.print(Columns(panels))
        votes = (record or {}).get("votes")
        if votes and j < len(votes) and votes[j]:
            entry = attempts[j] if j < len(attempts) and isinstance(attempts[j], dict) else {}
            console.print(vote_table(j, votes[j], entry, pair.output))
    for checkpoint in (record or {}).get("checkpoints") or []:
        panels = []
        for split, pairs in (("train", task.train), ("test", task.test)):
            for i, entry in enumerate(checkpoint.get(split) or []):
                truth = pairs[i].output if i < len(pairs) else None
                value = entry.get("prediction")
                shown = draw(f"{split} {i}", value, truth)
                if value is None and entry.get("error"):
                    shown = Panel(Text(entry["error"], style="dim"), title=f"{split} {i} {WRONG}", expand=False)
                panels.append(shown)
        console.print(f"[bold]step {checkpoint.get('step')}[/bold]")
        console.print(Columns(panels))
