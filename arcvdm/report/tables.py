"""Rich tables for `arcvdm score` and `arcvdm compare`: one summary line, then compact tables naming each score."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from arcvdm.baselines import CONCEPTARC_SOURCE, PUBLISHED
from arcvdm.compare import Comparison
from arcvdm.scoring import COMPUTE_FIELDS, ArcScore, Tally, VisionScore

MAX_LISTED = 10


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# Under the centered layout the decoder is given each test output's size from the ground truth, so the
# "shape" level is right by construction there: it is shown, marked, but says nothing about the model.
SHAPE_FROM_TRUTH = "shape (size from the ground truth)"


def shape_from_truth(pset) -> bool:
    """Whether a run folder decoded its test outputs at the ground truth's size (the centered layout)."""
    return any(r.get("output_size_from") == "ground-truth" for r in pset.records.values())


def level_name(level: str, size_from_truth: bool) -> str:
    return SHAPE_FROM_TRUTH if level == "shape" and size_from_truth else level


def std_cell(metric: dict) -> str:
    """A standard deviation needs two values: '-' for n = 1."""
    return f"{metric['std']:.4f}" if metric.get("n", 0) > 1 else "-"


def pct(part: float, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def summary_line(s: ArcScore) -> str:
    exact, n = s.exact, len(s.tasks)
    return (
        f"{s.name} on {s.dataset}: strict {exact.strict_solved}/{n} tasks ({pct(exact.strict_solved, n)}) · "
        f"per-output {exact.per_output_score:.1f}/{n} ({pct(exact.per_output_score, n)}) · "
        f"{exact.outputs_solved}/{s.outputs_total} test outputs · {attempts_note(s)} · "
        f"{len(s.missing)} missing · {len(s.malformed_files)} malformed" + scope_note(s)
    )


def attempts_note(s: ArcScore) -> str:
    if s.attempts_given > s.attempts:
        return f"{plural(s.attempts, 'attempt')} counted of {s.attempts_given} given"
    return plural(s.attempts, "attempt")


def print_warnings(s: ArcScore, console: Console) -> None:
    """What a reader must see next to the headline: attempts beyond k, tasks the dataset cannot score."""
    for line in (s.attempts_warning, unanswered_warning(s)):
        if line:
            console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)


def unanswered_warning(s: ArcScore) -> str | None:
    """One line naming the selected tasks the dataset has no test output for (not scored), else None."""
    if not s.unanswered:
        return None
    shown = ", ".join(s.unanswered[:MAX_LISTED]) + (" …" if len(s.unanswered) > MAX_LISTED else "")
    n = len(s.unanswered)
    return (f"{s.name}: {n} task{' has' if n == 1 else 's have'} no test output in {s.dataset}, "
            f"so {'it is' if n == 1 else 'they are'} not scored: {shown}")


def scope_note(s: ArcScore) -> str:
    """Says when a run is scored on its own selection rather than the whole dataset (empty otherwise)."""
    selected = len(s.tasks) + len(s.unanswered)
    if s.scope != "run" or selected == s.dataset_tasks:
        return ""
    return (f" · scored on {selected} of {s.dataset_tasks} tasks of {s.dataset} (the run's selection); "
            "--all-tasks counts the rest as missing")


def _tally_cells(t: Tally, tasks: int, outputs: int) -> list[str]:
    return [f"{t.strict_solved} ({pct(t.strict_solved, tasks)})", f"{t.per_output_score:.1f} ({pct(t.per_output_score, tasks)})",
            f"{t.outputs_solved}/{outputs}"]


def print_score(s: ArcScore | VisionScore, console: Console, size_from_truth: bool = False) -> None:
    """`size_from_truth`: the set decoded test outputs at the ground truth's size (see SHAPE_FROM_TRUTH)."""
    if isinstance(s, VisionScore):
        print_vision(s, console)
        return
    console.print(summary_line(s), highlight=False)
    print_warnings(s, console)
    table = Table("level", "strict tasks", "per-output score", "test outputs", title="strict = every test output exact; "
                  "per-output = fraction of a task's outputs exact, summed", title_justify="left")
    n, outputs = len(s.tasks), s.outputs_total
    for k, t in s.pass_at_k().items():
        table.add_row(f"pass@{k}", *_tally_cells(t, n, outputs))
    for level, t in s.lenient().items():
        if level != "exact":
            table.add_row(f"lenient: {level_name(level, size_from_truth)}", *_tally_cells(t, n, outputs))
    console.print(table)
    concepts = s.per_concept()
    if concepts:
        ct = Table("concept", "test outputs solved", "accuracy", "strict tasks", title="per concept (each test output on its own)", title_justify="left")
        for concept, row in concepts.items():
            ct.add_row(concept, f"{row['outputs_solved']}/{row['outputs_total']}", f"{row['accuracy']:.2f}", f"{row['strict_solved']}/{row['tasks']}")
        console.print(ct)
    if s.compute:
        console.print("per problem: " + " · ".join(f"{k} {v:.3g}" for k, v in s.compute.items()), highlight=False)
    _print_problems(s, console)


def _print_problems(s: ArcScore, console: Console) -> None:
    if s.missing:
        console.print(f"[yellow]missing ({len(s.missing)}, counted wrong):[/yellow] {', '.join(s.missing[:MAX_LISTED])}"
                      + (" …" if len(s.missing) > MAX_LISTED else ""), highlight=False)
    for item in s.malformed_files[:MAX_LISTED]:
        console.print(f"[yellow]malformed (counted wrong)[/yellow] {item['file']}: {item['reason']}", highlight=False, soft_wrap=True)
    if len(s.malformed_files) > MAX_LISTED:
        console.print(f"… and {len(s.malformed_files) - MAX_LISTED} more malformed files (--json lists all)")
    if s.unknown_tasks:
        console.print(f"[yellow]not in {s.dataset} (ignored):[/yellow] {len(s.unknown_tasks)} tasks", highlight=False)


def print_vision(s: VisionScore, console: Console) -> None:
    console.print(f"{s.name} ({s.family}): {plural(s.problems, 'problem')} scored, {len(s.failed)} failed", highlight=False)
    table = Table("metric", "mean", "std", "n", title="over problems (std with n-1)", title_justify="left")
    for name, m in s.metrics.items():
        table.add_row(name, f"{m['mean']:.4f}", std_cell(m), str(m["n"]))
    console.print(table)


def print_comparison(c: Comparison, console: Console, wide: bool = False, size_from_truth: frozenset[str] = frozenset()) -> None:
    """The main columns fit 100 characters; `wide` adds pass@k, the lenient levels and compute per problem.
    `size_from_truth`: names of the sets decoded at the ground truth's size (their shape level is marked)."""
    arc = [s for s in c.scores if isinstance(s, ArcScore)]
    console.print(f"{len(c.scores)} prediction sets on {c.dataset}; strict = every test output exact, per-output = "
                  "fraction of outputs exact; published rows have no predictions", highlight=False)
    console.print(c.scope_caption(), highlight=False)
    for s in arc:
        print_warnings(s, console)
    if arc:
        k = max(s.attempts for s in arc)
        levels = [lvl for lvl in arc[0].lenient() if lvl != "exact"] if wide else []
        compute = [f for f in (*COMPUTE_FIELDS, "total_s") if any(f in s.compute for s in arc)] if wide else []
        passes_shown = range(1, k + 1) if wide else range(0)
        title = "pass@k and lenient columns count test outputs" if wide else "--wide adds pass@k, lenient levels and compute; --json all"
        table = Table("set", "strict %", "strict tasks", "per-output", "outputs", *[f"pass@{i}" for i in passes_shown],
                      *levels, *[f"{f}/problem" for f in compute], title=title, title_justify="left")
        for s in arc:
            n, exact, passes, lenient = len(s.tasks), s.exact, s.pass_at_k(), s.lenient()
            table.add_row(
                s.name, pct(exact.strict_solved, n), f"{exact.strict_solved}/{n}", f"{exact.per_output_score:.1f}",
                f"{exact.outputs_solved}/{s.outputs_total}",
                *[f"{passes[i].outputs_solved}" if i in passes else "-" for i in passes_shown],
                *[str(lenient[lvl].outputs_solved) + (" (size given)" if lvl == "shape" and s.name in size_from_truth else "")
                  for lvl in levels],
                *[f"{s.compute[f]:.3g}" if f in s.compute else "-" for f in compute],
            )
        for r in c.references:
            table.add_row(f"[dim]{r.name} ({PUBLISHED})[/dim]", f"[dim]{r.value:.2f}%[/dim]", *["" for _ in table.columns[2:]])
        console.print(table)
        if c.references:
            console.print(f"[dim]published rows: {c.references[0].source}[/dim]", highlight=False)
        if levels and size_from_truth:
            console.print(f"[dim]size given: {', '.join(sorted(size_from_truth))} decoded test outputs at the ground "
                          "truth's size (centered layout), so their shape level is right by construction[/dim]", highlight=False)
    if c.concept_references:
        _print_concepts(c, arc, console)
    if c.overlaps:
        ot = Table("A", "B", "A only", "B only", "both", title="strictly solved problems", title_justify="left")
        for o in c.overlaps:
            ot.add_row(o.a, o.b, str(len(o.a_only)), str(len(o.b_only)), str(len(o.both)))
        console.print(ot)
        console.print("solved by no other set: " + ", ".join(f"{name} {len(ids)}" for name, ids in c.unique.items()), highlight=False)
    for s in c.scores:
        if isinstance(s, VisionScore):
            print_vision(s, console)


def _print_concepts(c: Comparison, arc: list[ArcScore], console: Console) -> None:
    tables = {s.name: s.per_concept() for s in arc}
    refs = c.concept_references
    table = Table("concept", *tables, *[f"[dim]{name} ({PUBLISHED})[/dim]" for name in refs],
                  title="per-concept accuracy (test outputs on their own; all = published concepts)", title_justify="left")
    concepts = sorted({k for t in tables.values() for k in t} | {k for r in refs.values() for k in r if k != "all"})
    for concept in [*concepts, "all"]:
        cells = []
        for t in tables.values():
            if concept == "all":  # over the published concepts only, like the reference columns
                rows = [r for k, r in t.items() if not refs or k in refs["human"]]
                solved, total = sum(r["outputs_solved"] for r in rows), sum(r["outputs_total"] for r in rows)
                cells.append(f"{solved / total:.2f}" if total else "-")
            else:
                cells.append(f"{t[concept]['accuracy']:.2f}" if concept in t else "-")
        table.add_row(concept, *cells, *[f"{r[concept]:.2f}" if concept in r else "-" for r in refs.values()])
    console.print(table)
    console.print(f"[dim]published columns: {CONCEPTARC_SOURCE}; corpus tasks only[/dim]", highlight=False)
