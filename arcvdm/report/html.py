"""`arcvdm report RUN`: a static HTML report that opens from disk (no server, no network, a little inline JS).

index.html: the summary metrics and a sortable, filterable table of problems. problems/<id>.html: train pairs,
the transition GIF when the run saved one, every checkpoint's decoded prediction next to the ground truth with a
cell-difference view, the attempts and vote counts. Grids are small PNGs (no videos are copied), so a
400-problem report stays a few megabytes. Vision runs get their metric table and each checkpoint's images.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from arcvdm.formats import PredictionSet, parse_attempt
from arcvdm.io import atomic_write_text, safe_name
from arcvdm.render import save_png
from arcvdm.report.images import diff_image, grid_image
from arcvdm.report.inspect import MAX_VOTES
from arcvdm.report.tables import summary_line
from arcvdm.scoring import ArcScore, TaskScore, score, score_vision
from arcvdm.tasks import Grid, Task, TaskSet

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{cursor:pointer;background:#eee}.ok{color:#080}.bad{color:#c00}.dim{color:#888}
figure{display:inline-block;margin:4px 10px 4px 0;vertical-align:top}figcaption{font-size:12px;color:#555}
img{image-rendering:pixelated;border:1px solid #ddd}section{margin-bottom:1.5em}
"""
SCRIPT = """
const body=document.querySelector('#problems tbody');
document.querySelectorAll('#problems th').forEach((th,i)=>th.onclick=()=>{
  const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
  [...body.rows].sort((a,b)=>{const x=a.cells[i].dataset.v,y=b.cells[i].dataset.v,nx=parseFloat(x),ny=parseFloat(y);
    const c=(isNaN(nx)||isNaN(ny))?x.localeCompare(y):nx-ny;return asc?c:-c}).forEach(r=>body.appendChild(r))});
const text=document.getElementById('filter'),status=document.getElementById('status');
function apply(){const q=text.value.toLowerCase();for(const r of body.rows){
  r.style.display=(r.textContent.toLowerCase().includes(q)&&(!status.value||r.dataset.status===status.value))?'':'none'}}
text.oninput=apply;status.onchange=apply;
"""
FILTERS = """<p><input id="filter" placeholder="filter problems"> <select id="status"><option value="">all</option>
<option>solved</option><option>unsolved</option><option>failed</option></select> (click a column to sort)</p>"""


def page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}{js}</body></html>\n")


def esc(value: Any) -> str:
    return html.escape(str(value))


def figure(src: str | None, caption: str, note: str = "") -> str:
    img = f"<img src='{esc(src)}' alt='{esc(caption)}'>" if src else f"<div class='dim'>{esc(note or 'none')}</div>"
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def write_report(pset: PredictionSet, tasks: TaskSet | None, out_dir: str | Path) -> Path:
    """Write the report for run folder `pset` into `out_dir`; return the path of index.html."""
    out_dir = Path(out_dir)
    if pset.family != "arc":
        return _write_vision(pset, out_dir)
    assert tasks is not None, "an ARC report needs the dataset's answers"
    result = score(pset, tasks)  # a run is reported on the tasks it selected
    rows = []
    for ts in result.tasks:
        record = pset.records.get(ts.task_id)
        if record is None:
            continue  # not attempted by this run: counted as missing in the summary
        _write_problem(tasks[ts.task_id], record, ts, pset.path, out_dir)
        rows.append(_index_row(ts, record))
    return atomic_write_text(out_dir / "index.html", page(f"arcvdm report: {pset.name}", _index_body(pset, result, rows), SCRIPT))


def _index_row(ts: TaskScore, record: dict[str, Any]) -> str:
    done = record.get("status") == "done"
    state = "solved" if ts.solved else ("unsolved" if done else "failed")
    fraction = ts.fraction(lambda o: o.correct_at is not None)
    steps = record.get("train_steps_run")
    seconds = (record.get("timings") or {}).get("total_s")
    cells = [
        (ts.task_id, f"<a href='problems/{esc(ts.task_id)}.html'>{esc(ts.task_id)}</a>"),
        (ts.concept or "", esc(ts.concept or "")),
        (record.get("status", "?"), esc(record.get("status", "?"))),
        (int(ts.solved), "<span class='ok'>✓</span>" if ts.solved else "<span class='bad'>✗</span>"),
        (fraction, f"{fraction:.2f}"),
        (steps if steps is not None else -1, esc(steps if steps is not None else "")),
        (seconds if seconds is not None else -1, f"{seconds:.1f}" if seconds is not None else ""),
    ]
    tds = "".join(f"<td data-v='{esc(v)}'>{shown}</td>" for v, shown in cells)
    return f"<tr data-status='{state}'>{tds}</tr>"


def _index_body(pset: PredictionSet, result: ArcScore, rows: list[str]) -> str:
    d = result.to_dict()
    metrics = "".join(
        f"<tr><td>{esc(name)}</td><td>{t['strict_solved']}</td><td>{t['per_output_score']:.1f}</td><td>{t['outputs_solved']}/{d['outputs_total']}</td></tr>"
        for name, t in [*((f"pass@{k}", v) for k, v in d["pass_at_k"].items()), *((f"lenient: {k}", v) for k, v in d["lenient"].items())]
    )
    concepts = "".join(
        f"<tr><td>{esc(c)}</td><td>{r['outputs_solved']}/{r['outputs_total']}</td><td>{r['accuracy']:.2f}</td></tr>"
        for c, r in d.get("per_concept", {}).items()
    )
    concept_table = f"<h2>Per concept (test outputs)</h2><table><tr><th>concept</th><th>solved</th><th>accuracy</th></tr>{concepts}</table>" if concepts else ""
    return (
        f"<h1>{esc(pset.name)}</h1><p>{esc(summary_line(result))}</p>"
        "<p class='dim'>strict = every test output of a task exact; per-output = fraction of a task's outputs exact, summed.</p>"
        "<table><tr><th>level</th><th>strict tasks</th><th>per-output score</th><th>test outputs</th></tr>"
        f"{metrics}</table>{concept_table}<h2>Problems ({len(rows)} in this run)</h2>{FILTERS}"
        "<table id='problems'><thead><tr><th>task</th><th>concept</th><th>status</th><th>solved (strict)</th>"
        f"<th>per-output</th><th>steps</th><th>time (s)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


class _Pictures:
    """Writes a problem's PNGs into report/problems/<id>/ and returns their paths relative to the page."""

    def __init__(self, out_dir: Path, task_id: str):
        self.folder = out_dir / "problems" / safe_name(task_id)
        self.prefix = safe_name(task_id)

    def grid(self, name: str, grid: Grid) -> str:
        save_png(grid_image(grid), self.folder / f"{name}.png")
        return f"{self.prefix}/{name}.png"

    def prediction(self, name: str, value: Any, truth: Grid | None, caption: str) -> str:
        """The decoded grid (or why there is none) with ✓/✗, and its cell-difference view against `truth`."""
        grid, issue = parse_attempt(value, caption)
        if grid is None:
            return figure(None, f"{esc(caption)} <span class='bad'>✗</span>", issue or "no prediction")
        right = truth is not None and grid == truth
        mark = "<span class='ok'>✓</span>" if right else "<span class='bad'>✗</span>"
        shown = figure(self.grid(name, grid), f"{esc(caption)} {mark if truth is not None else ''}")
        if truth is None or right:
            return shown
        diff = diff_image(grid, truth)
        if diff is None:
            return shown + figure(None, "difference", f"shape {grid.shape[0]}×{grid.shape[1]}, truth {truth.shape[0]}×{truth.shape[1]}")
        save_png(diff, self.folder / f"{name}-diff.png")
        wrong = int((grid.array != truth.array).sum())
        return shown + figure(f"{self.prefix}/{name}-diff.png", f"difference: {wrong} cells")


def _vote_table(pictures: _Pictures, j: int, votes: list[dict[str, Any]], attempts: dict[str, Any], truth: Grid | None) -> str:
    """The grids voted on for test input j as small pictures, most votes first, with their counts."""
    rows = []
    for n, vote in enumerate(votes[:MAX_VOTES], 1):
        grid, issue = parse_attempt(vote.get("grid"), f"vote {n}")
        picture = figure(pictures.grid(f"test{j}-vote{n}", grid), f"{grid.shape[0]}×{grid.shape[1]}") if grid is not None else esc(issue or "none")
        right = "" if truth is None else ("<span class='ok'>✓</span>" if grid is not None and grid == truth else "<span class='bad'>✗</span>")
        became = ", ".join(key for key, value in sorted(attempts.items()) if grid is not None and value == grid.root)
        rows.append(f"<tr><td>{n}</td><td>{picture}</td><td>{esc(vote.get('count', '?'))}</td><td>{esc(vote.get('identity_votes', ''))}</td>"
                    f"<td>{esc(vote.get('last_step', ''))}</td><td>{right}</td><td>{esc(became)}</td></tr>")
    more = f"<p class='dim'>and {len(votes) - MAX_VOTES} more grids with fewer votes</p>" if len(votes) > MAX_VOTES else ""
    return (f"<h3>Votes</h3><table class='votes' id='votes-test{j}'><tr><th>#</th><th>grid</th><th>votes</th><th>untransformed views</th>"
            f"<th>last step</th><th>right</th><th>attempt</th></tr>{''.join(rows)}</table>{more}")


def _write_problem(task: Task, record: dict[str, Any], ts: TaskScore, run_dir: Path, out_dir: Path) -> None:
    pictures = _Pictures(out_dir, task.id)
    pages_dir = out_dir / "problems"
    sections = [f"<p><a href='../index.html'>← all problems</a></p><h1>{esc(task.id)}</h1>"
                f"<p>status: {esc(record.get('status'))} · solved (strict): {'✓' if ts.solved else '✗'} · "
                f"steps run: {esc(record.get('train_steps_run'))} · selection: {esc(record.get('selection'))}</p>"]
    train = "".join(figure(pictures.grid(f"train{i}-input", p.input), f"train {i} input")
                    + figure(pictures.grid(f"train{i}-output", p.output), f"train {i} output") + "<br>" for i, p in enumerate(task.train))
    gifs = sorted((run_dir / "problems" / task.id).glob("train*.gif")) if (run_dir / "problems" / task.id).is_dir() else []
    videos = "".join(figure(os.path.relpath(g, pages_dir), f"transition video {g.stem}") for g in gifs)
    sections.append(f"<section><h2>Train pairs</h2>{train}{videos}</section>")
    attempts, votes = record.get("attempts") or [], record.get("votes") or []
    for j, pair in enumerate(task.test):
        parts = [figure(pictures.grid(f"test{j}-input", pair.input), f"test {j} input"),
                 figure(pictures.grid(f"test{j}-truth", pair.output), f"test {j} ground truth")]
        entry = attempts[j] if j < len(attempts) and isinstance(attempts[j], dict) else {}
        parts += [pictures.prediction(f"test{j}-{key}", value, pair.output, key) for key, value in sorted(entry.items())]
        if j < len(votes) and votes[j]:
            parts.append(_vote_table(pictures, j, votes[j], entry, pair.output))
        sections.append(f"<section><h2>Test {j}</h2>{''.join(parts)}</section>")
    for checkpoint in record.get("checkpoints") or []:
        step, parts = checkpoint.get("step"), []
        for split, pairs in (("train", task.train), ("test", task.test)):
            for i, entry in enumerate(checkpoint.get(split) or []):
                truth = pairs[i].output if i < len(pairs) else None
                frame = run_dir / "problems" / task.id / f"step{step}-{split}{i}.png"
                if frame.is_file():
                    parts.append(f"<figure><img src='{esc(os.path.relpath(frame, pages_dir))}' width='120'><figcaption>last frame</figcaption></figure>")
                caption = f"{split} {i}" + (f" ({entry['error']})" if entry.get("error") else "")
                parts.append(pictures.prediction(f"step{step}-{split}{i}", entry.get("prediction"), truth, caption))
                if truth is not None:  # the PNG written above for the train pair or the test section
                    name = f"train{i}-output" if split == "train" else f"test{i}-truth"
                    parts.append(figure(f"{pictures.prefix}/{name}.png", f"{split} {i} ground truth") + "<br>")
        sections.append(f"<section><h2>Checkpoint step {esc(step)}</h2>{''.join(parts)}</section>")
    atomic_write_text(pages_dir / f"{safe_name(task.id)}.html", page(task.id, "".join(sections)))


def _write_vision(pset: PredictionSet, out_dir: Path) -> Path:
    result = score_vision(pset)
    metrics = "".join(f"<tr><td>{esc(k)}</td><td>{m['mean']:.4f}</td><td>{m['std']:.4f}</td><td>{m['n']}</td></tr>" for k, m in result.metrics.items())
    names = list(result.metrics)
    rows = []
    for task_id, record in sorted(pset.records.items()):
        done = record.get("status") == "done"
        values = record.get("metrics") or {}
        cells = [(task_id, f"<a href='problems/{esc(task_id)}.html'>{esc(task_id)}</a>"), (record.get("status"), esc(record.get("status")))]
        cells += [(values.get(n, -1), f"{values[n]:.4f}" if isinstance(values.get(n), (int, float)) else "") for n in names]
        tds = "".join(f"<td data-v='{esc(v)}'>{shown}</td>" for v, shown in cells)
        rows.append(f"<tr data-status='{'unsolved' if done else 'failed'}'>{tds}</tr>")
        _write_vision_problem(pset.path, out_dir, task_id, record)
    heads = "".join(f"<th>{esc(n)}</th>" for n in ["problem", "status", *names])
    body = (f"<h1>{esc(pset.name)} ({esc(result.family)})</h1><p>{result.problems} problems scored, {len(result.failed)} failed</p>"
            f"<table><tr><th>metric</th><th>mean</th><th>std (n-1)</th><th>n</th></tr>{metrics}</table><h2>Problems</h2>{FILTERS}"
            f"<table id='problems'><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return atomic_write_text(out_dir / "index.html", page(f"arcvdm report: {pset.name}", body, SCRIPT))


def _write_vision_problem(run_dir: Path, out_dir: Path, task_id: str, record: dict[str, Any]) -> None:
    pages_dir = out_dir / "problems"
    sections = [f"<p><a href='../index.html'>← all problems</a></p><h1>{esc(task_id)}</h1><p>status: {esc(record.get('status'))}</p>"]
    for checkpoint in record.get("checkpoints") or []:
        figures = []
        for rel in checkpoint.get("images") or []:
            # the vision runner names images relative to problems/; accept the run folder and the problem's folder too
            candidates = (run_dir / "problems" / rel, run_dir / rel, run_dir / "problems" / task_id / rel)
            path = next((p for p in candidates if p.is_file()), None)
            figures.append(figure(os.path.relpath(path, pages_dir) if path else None, esc(Path(rel).stem), f"missing: {rel}"))
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in (checkpoint.get("metrics") or {}).items() if isinstance(v, (int, float)))
        sections.append(f"<section><h2>Step {esc(checkpoint.get('step'))}</h2><p>{esc(metrics)}</p>{''.join(figures)}</section>")
    atomic_write_text(pages_dir / f"{safe_name(task_id)}.html", page(task_id, "".join(sections)))
