"""`arcvdm report RUN`: a static HTML report that opens from disk (no server, no network, a little inline JS).

index.html: the summary metrics, the score's warnings and a sortable, filterable table of every problem of the
run with its state (arcvdm/report/overview.py: solved, unsolved, failed with its reason, no answer, malformed, not
run) and counts that add up to the run's problems. problems/<name>.html (the id's safe file name): train pairs,
the transition GIF when the run saved one, every checkpoint's decoded prediction next to the ground truth with a
cell-difference view, the attempts and vote counts. Vision runs get their metric table and each checkpoint's
labelled input / target / prediction images. Pages are rendered from the Jinja2 templates in
arcvdm/report/templates/ (escaping by default). Everything a page shows is written or copied under the report
folder, so the folder can be moved or shared on its own; grids are small PNGs, so a 400-problem report stays a
few megabytes plus the run's transition GIFs.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader

from arcvdm.errors import ArcvdmError
from arcvdm.formats import PredictionSet, parse_attempt
from arcvdm.io import atomic_write_text, safe_name
from arcvdm.render import save_png
from arcvdm.report.images import diff_image, grid_image
from arcvdm.report.inspect import MAX_VOTES, selection_words
from arcvdm.report.overview import STATES, ProblemRow, counts_line, problem_rows
from arcvdm.report.tables import level_name, plural, shape_from_truth, std_cell, summary_line, unanswered_warning
from arcvdm.scoring import score, score_vision
from arcvdm.tasks import Grid, TaskSet
from arcvdm.vision.families import IMAGE_PANELS

_TEMPLATES = Environment(loader=PackageLoader("arcvdm.report", "templates"), autoescape=True,
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_TRIPLET = re.compile(r"step\d+-eval\d+\.png$")  # the vision runner's input | target | prediction pictures


def render_page(template: str, **context: Any) -> str:
    return _TEMPLATES.get_template(template).render(**context)


def figure(src: str | None, caption: str, mark: str | None = None, note: str = "", **extra: Any) -> dict[str, Any]:
    """A picture for the `figure` macro: `mark` is "right", "wrong" or None; `note` stands in for a missing picture."""
    return {"src": src, "caption": caption, "mark": mark, "note": note, **extra}


def steps_words(record: dict[str, Any]) -> str:
    run, fixed = record.get("train_steps_run"), record.get("train_steps_fixed")
    if run is None:
        return "training steps: not recorded"
    return f"training steps: {run}" + (f" of {fixed} scheduled" if fixed is not None and fixed != run else "")


@dataclass
class Report:
    """What `write_report` wrote: index.html, the problems it lists (ARC runs) and one line per problem left
    without a page because its id cannot be a file name."""

    index: Path
    rows: list[ProblemRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def page_name(task_id: str, skipped: list[str]) -> str | None:
    """The page's file stem for `task_id`, or None with a line in `skipped` when the id cannot be a file name."""
    try:
        return safe_name(task_id)
    except ArcvdmError as e:
        skipped.append(f"{e}; its problem has no page")
        return None


def write_report(pset: PredictionSet, tasks: TaskSet | None, out_dir: str | Path) -> Report:
    """Write the report for run folder `pset` into `out_dir`."""
    out_dir = Path(out_dir)
    if pset.family != "arc":
        return _write_vision(pset, out_dir)
    assert tasks is not None, "an ARC report needs the dataset's answers"
    result = score(pset, tasks)  # a run is reported on the tasks it selected
    report = Report(out_dir / "index.html", problem_rows(pset, tasks, result))
    for row in report.rows:
        if row.task is not None and row.record is not None and (name := page_name(row.task_id, report.skipped)):
            row.page = f"{name}.html"
            _write_problem(row, name, pset.path, out_dir)
    given = shape_from_truth(pset)
    d = result.to_dict()
    levels = [*((f"pass@{k}", v) for k, v in d["pass_at_k"].items()),
              *((f"lenient: {level_name(k, given)}", v) for k, v in d["lenient"].items())]
    metrics = [{"level": name, "strict": t["strict_solved"], "per_output": t["per_output_score"],
                "outputs": f"{t['outputs_solved']}/{d['outputs_total']}"} for name, t in levels]
    concepts = [{"name": c, "solved": r["outputs_solved"], "total": r["outputs_total"], "accuracy": r["accuracy"]}
                for c, r in d.get("per_concept", {}).items()]
    warnings = [w for w in (result.attempts_warning, unanswered_warning(result)) if w]
    text = render_page("index.html", title=f"arcvdm report: {pset.name}", sortable=True, name=pset.name,
                       summary=summary_line(result), warnings=warnings, metrics=metrics, concepts=concepts,
                       rows=[_index_row(r) for r in report.rows], counts=counts_line(report.rows), states=STATES,
                       size_from_truth=given)
    atomic_write_text(report.index, text)
    return report


def _index_row(row: ProblemRow) -> dict[str, Any]:
    record, ts = row.record or {}, row.score
    scored = ts is not None  # counted in the score, if only as wrong (failed, not run, unreadable)
    concept = row.task.concept if row.task is not None else record.get("concept")
    return {"id": row.task_id, "href": _href(row.page), "concept": concept or "", "status": row.status,
            "state": row.state, "solved": ts.solved if scored else None,
            "fraction": ts.fraction(lambda o: o.correct_at is not None) if scored else None,
            "steps": record.get("train_steps_run"), "seconds": (record.get("timings") or {}).get("total_s")}


def _href(page: str | None) -> str | None:
    """A link to problems/<page>: percent-encoded, since ids may hold spaces, '#' or '%'."""
    return None if page is None else f"problems/{quote(page)}"


class _Pictures:
    """Writes a problem's PNGs (and copies the run's files it shows) into report/problems/<name>/; returns their
    paths relative to the page (percent-encoded)."""

    def __init__(self, out_dir: Path, name: str):
        self.folder = out_dir / "problems" / name
        self.prefix = quote(name)

    def grid(self, name: str, grid: Grid) -> str:
        save_png(grid_image(grid), self.folder / f"{name}.png")
        return f"{self.prefix}/{name}.png"

    def copy(self, source: Path) -> str:
        """A file of the run folder, copied next to the page's pictures (named `run-<name>`, never clashing)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.folder / f"run-{source.name}")
        return f"{self.prefix}/run-{source.name}"

    def prediction(self, name: str, value: Any, truth: Grid | None, caption: str) -> list[dict[str, Any]]:
        """The decoded grid (or why there is none) marked right or wrong, and its cell-difference view against `truth`."""
        grid, issue = parse_attempt(value, caption)
        if grid is None:
            return [figure(None, caption, "wrong", issue or "no prediction")]
        right = truth is not None and grid == truth
        mark = None if truth is None else ("right" if right else "wrong")
        shown = [figure(self.grid(name, grid), caption, mark)]
        if truth is None or right:
            return shown
        diff = diff_image(grid, truth)
        if diff is None:
            return shown + [figure(None, "difference", note=f"shape {grid.shape[0]}×{grid.shape[1]}, truth {truth.shape[0]}×{truth.shape[1]}")]
        save_png(diff, self.folder / f"{name}-diff.png")
        wrong = int((grid.array != truth.array).sum())
        return shown + [figure(f"{self.prefix}/{name}-diff.png", f"difference: {plural(wrong, 'cell')}")]


def _votes(pictures: _Pictures, j: int, votes: list[dict[str, Any]], attempts: dict[str, Any], truth: Grid | None) -> list[dict[str, Any]]:
    """The grids voted on for test input j as small pictures, most votes first, with their counts."""
    rows = []
    for n, vote in enumerate(votes[:MAX_VOTES], 1):
        grid, issue = parse_attempt(vote.get("grid"), f"vote {n}")
        picture = figure(pictures.grid(f"test{j}-vote{n}", grid), f"{grid.shape[0]}×{grid.shape[1]}") if grid is not None else None
        rows.append({"picture": picture, "issue": issue or "none", "count": vote.get("count", "?"),
                     "identity_votes": vote.get("identity_votes", ""), "last_step": vote.get("last_step", ""),
                     "right": None if truth is None else (grid is not None and grid == truth),
                     "became": ", ".join(key for key, value in sorted(attempts.items()) if grid is not None and value == grid.root)})
    return rows


def _write_problem(row: ProblemRow, name: str, run_dir: Path, out_dir: Path) -> None:
    task, record = row.task, row.record
    pictures = _Pictures(out_dir, name)
    run_pictures = run_dir / "problems" / name
    solved = "not scored (the dataset has no test output)" if row.score is None else ("yes" if row.score.solved else "no")
    facts = [f"status: {row.status}", f"solved (strict): {solved}",
             steps_words(record), f"selection: {selection_words(record.get('selection'))}"]
    train = [(figure(pictures.grid(f"train{i}-input", p.input), f"train {i} input"),
              figure(pictures.grid(f"train{i}-output", p.output), f"train {i} output")) for i, p in enumerate(task.train)]
    gifs = sorted(run_pictures.glob("train*.gif")) if run_pictures.is_dir() else []
    videos = [figure(pictures.copy(g), f"transition video {g.stem}") for g in gifs]
    attempts, votes = record.get("attempts") or [], record.get("votes") or []
    tests = []
    for j, pair in enumerate(task.test):
        truth = (figure(pictures.grid(f"test{j}-truth", pair.output), f"test {j} ground truth") if pair.output is not None
                 else figure(None, f"test {j} ground truth", note="not in the dataset"))
        figures = [figure(pictures.grid(f"test{j}-input", pair.input), f"test {j} input"), truth]
        entry = attempts[j] if j < len(attempts) and isinstance(attempts[j], dict) else {}
        for key, value in sorted(entry.items()):
            figures += pictures.prediction(f"test{j}-{key}", value, pair.output, key.replace("_", " "))
        voted = votes[j] if j < len(votes) and votes[j] else []
        tests.append({"figures": figures, "votes": _votes(pictures, j, voted, entry, pair.output),
                      "more_votes": max(0, len(voted) - MAX_VOTES)})
    checkpoints = []
    for checkpoint in record.get("checkpoints") or []:
        step, rows = checkpoint.get("step"), []
        for split, pairs in (("train", task.train), ("test", task.test)):
            for i, entry in enumerate(checkpoint.get(split) or []):
                truth = pairs[i].output if i < len(pairs) else None
                row = []
                frame = run_pictures / f"step{step}-{split}{i}.png"
                if frame.is_file():
                    row.append(figure(pictures.copy(frame), f"{split} {i}: generated last frame", width=120))
                caption = f"{split} {i}" + (f" ({entry['error']})" if entry.get("error") else "")
                row += pictures.prediction(f"step{step}-{split}{i}", entry.get("prediction"), truth, caption)
                if truth is not None:  # the PNG written above for the train pair or the test section
                    png = f"train{i}-output" if split == "train" else f"test{i}-truth"
                    row.append(figure(f"{pictures.prefix}/{png}.png", f"{split} {i} ground truth"))
                rows.append(row)
        checkpoints.append({"step": step, "rows": rows})
    text = render_page("problem.html", title=task.id, task_id=task.id, facts=facts, train=train, videos=videos,
                       tests=tests, checkpoints=checkpoints)
    atomic_write_text(out_dir / "problems" / f"{name}.html", text)


def _write_vision(pset: PredictionSet, out_dir: Path) -> Report:
    result = score_vision(pset)
    metrics = [{"name": k, "mean": m["mean"], "std": std_cell(m), "n": m["n"]} for k, m in result.metrics.items()]
    names = list(result.metrics)
    report = Report(out_dir / "index.html")
    rows = []
    for task_id, record in sorted(pset.records.items()):
        values = record.get("metrics") or {}
        name = page_name(task_id, report.skipped)
        rows.append({"id": task_id, "href": _href(name and f"{name}.html"), "status": record.get("status") or "unknown",
                     "state": "unsolved" if record.get("status") == "done" else "failed",
                     "cells": [values[n] if isinstance(values.get(n), (int, float)) else None for n in names]})
        if name:
            _write_vision_problem(pset.path, out_dir, task_id, name, record)
    text = render_page("vision_index.html", title=f"arcvdm report: {pset.name}", sortable=True, name=pset.name,
                       family=result.family, problems=result.problems, failed=len(result.failed), metrics=metrics,
                       names=names, rows=rows)
    atomic_write_text(report.index, text)
    return report


def _write_vision_problem(run_dir: Path, out_dir: Path, task_id: str, name: str, record: dict[str, Any]) -> None:
    pictures = _Pictures(out_dir, name)
    checkpoints = []
    for checkpoint in record.get("checkpoints") or []:
        figures = []
        for rel in checkpoint.get("images") or []:
            # the vision runner names images relative to problems/; accept the run folder and the problem's folder too
            candidates = (run_dir / "problems" / rel, run_dir / rel, run_dir / "problems" / name / rel)
            path = next((p for p in candidates if p.is_file()), None)
            panels = IMAGE_PANELS if _TRIPLET.search(rel) else None
            caption = Path(rel).stem + (": " + ", ".join(IMAGE_PANELS) + " (left to right)" if panels else "")
            figures.append(figure(pictures.copy(path) if path else None, caption, note=f"missing: {rel}", panels=panels))
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in (checkpoint.get("metrics") or {}).items() if isinstance(v, (int, float)))
        checkpoints.append({"step": checkpoint.get("step"), "metrics": metrics, "figures": figures})
    text = render_page("vision_problem.html", title=task_id, task_id=task_id, status=record.get("status") or "unknown",
                       checkpoints=checkpoints)
    atomic_write_text(out_dir / "problems" / f"{name}.html", text)
