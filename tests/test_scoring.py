"""Scorer, published baselines and `arcvdm score`: `python -m pytest tests/test_scoring.py -q`."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from arcvdm.baselines import CONCEPTARC_TABLE, PAPER_TABLE3, conceptarc_table_from_csv
from arcvdm.cli import app
from arcvdm.errors import ArcvdmError
from arcvdm.formats import load_predictions
from arcvdm.scoring import load_answers, score
from arcvdm.tasks import load_tasks
from run_builder import write_run

# (folder, per-output score, strict tasks, test outputs solved, attempt_1-only outputs) from each SOURCE.md.
PUBLISHED = [
    ("claude_sonnet_20241022", 81.0, 78, 88, 81),
    ("open_ai_o1_preview_20241217", 86.0, 85, 98, 75),
    ("open_ai_o1_high_20241217", 157.0, 155, 172, 142),
]


@pytest.fixture(scope="module")
def arc1_eval(datasets_dir):
    return load_answers("arc-agi-1/evaluation", str(datasets_dir))


@pytest.mark.parametrize("folder, per_output, strict, outputs, first_only", PUBLISHED)
def test_reproduces_the_published_baseline_figures(baselines_dir, arc1_eval, folder, per_output, strict, outputs, first_only):
    result = score(load_predictions(baselines_dir / folder / "submissions"), arc1_eval).to_dict()
    assert (result["tasks"], result["outputs_total"], result["missing"]) == (400, 419, 0)
    assert result["per_output_score"] == per_output
    assert result["strict_solved"] == strict
    assert result["outputs_solved"] == outputs
    assert result["pass_at_k"]["1"]["outputs_solved"] == first_only
    assert result["pass_at_k"]["2"]["outputs_solved"] == outputs
    assert result["malformed"] > 0  # each set has ragged or out-of-range grids: reported, counted wrong


def test_upstream_per_task_scores_match(baselines_dir, arc1_eval):
    upstream = json.loads((baselines_dir / "claude_sonnet_20241022" / "results.json").read_text())["task_results"]
    result = score(load_predictions(baselines_dir / "claude_sonnet_20241022" / "submissions"), arc1_eval)
    ours = {t.task_id: t.fraction(lambda o: o.correct_at is not None) for t in result.tasks}
    assert ours == upstream


def test_cli_json_has_the_contract_keys(baselines_dir, datasets_dir):
    folder = baselines_dir / "open_ai_o1_preview_20241217" / "submissions"
    out = CliRunner().invoke(app, ["score", str(folder), "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    for key in ("tasks", "strict_solved", "per_output_score", "outputs_solved", "outputs_total", "missing", "malformed", "pass_at_k", "lenient"):
        assert key in data
    assert (data["strict_solved"], data["per_output_score"]) == (85, 86.0)
    assert (data["scope"], data["dataset_tasks"]) == ("dataset", 400)  # not a run folder: the whole dataset
    human = CliRunner().invoke(app, ["score", str(folder), "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir)])
    assert "strict 85/400 tasks" in human.output and "per-output 86.0/400" in human.output


def test_a_partial_run_is_scored_on_its_selection(tmp_path, arc1_eval, datasets_dir):
    tasks = list(arc1_eval)[:3]
    ids = [t.id for t in tasks]
    # Selected a and c (c failed); b was solved by an earlier run in the folder but is outside the selection.
    run = write_run(tmp_path / "run", tasks, solved={ids[0], ids[1]}, failed={ids[2]}, selection=[ids[0], ids[2]])
    cli = CliRunner()
    data = json.loads(cli.invoke(app, ["score", str(run), "--data-dir", str(datasets_dir), "--json"]).output)
    assert (data["scope"], data["tasks"], data["dataset_tasks"]) == ("run", 2, 400)
    assert (data["strict_solved"], data["missing_tasks"]) == (1, [ids[2]])
    human = cli.invoke(app, ["score", str(run), "--data-dir", str(datasets_dir)], env={"COLUMNS": "300"}).output
    assert ("strict 1/2 tasks" in human and "scored on 2 of 400 tasks of arc-agi-1/evaluation (the run's selection); "
            "--all-tasks counts the rest as missing" in human)
    everything = json.loads(cli.invoke(app, ["score", str(run), "--data-dir", str(datasets_dir), "--json", "--all-tasks"]).output)
    assert (everything["scope"], everything["tasks"], everything["missing"], everything["strict_solved"]) == ("dataset", 400, 398, 2)


def test_a_run_selecting_tasks_of_another_dataset_is_refused(tmp_path, arc1_eval, datasets_dir):
    run = write_run(tmp_path / "run", [], solved=set(), dataset="tasks_json", selection=["flip-h"])  # every problem failed
    with pytest.raises(ArcvdmError, match=r"none of the 1 selected tasks \(e.g. 'flip-h'\) is in arc-agi-1/evaluation: "
                                          r"check --dataset \(the run was made on tasks_json\)"):
        score(load_predictions(run), arc1_eval)


def _task(tmp_path, name, tests):
    train = [{"input": [[0]], "output": [[1]]}]
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / f"{name}.json").write_text(json.dumps({"train": train, "test": [{"input": [[0]], "output": o} for o in tests]}))


def test_strict_per_output_pass_at_k_lenient_missing_and_malformed(tmp_path):
    truth_a = [[1, 2], [3, 4]]
    _task(tmp_path, "aaa", [truth_a, [[5]]])  # two outputs
    _task(tmp_path, "bbb", [[[1, 1], [1, 1]]])
    _task(tmp_path, "ccc", [[[7]]])  # missing
    _task(tmp_path, "ddd", [[[7]]])  # wrong number of entries
    tasks = load_tasks(tmp_path / "data")
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "aaa.json").write_text(json.dumps([{"attempt_1": [[1, 2], [3, 0]], "attempt_2": truth_a}, {"attempt_1": [[6]], "attempt_2": [[6, 6]]}]))
    (preds / "bbb.json").write_text(json.dumps([{"attempt_1": [[1, 1], [1, 0]], "attempt_2": [[1, 1, 1]]}]))
    (preds / "ddd.json").write_text(json.dumps([{"attempt_1": [[7]]}, {"attempt_1": [[7]]}]))
    (preds / "zzz.json").write_text("[]")
    r = score(load_predictions(preds), tasks).to_dict()
    assert (r["tasks"], r["outputs_total"], r["attempts"]) == (4, 5, 2)
    assert (r["strict_solved"], r["per_output_score"], r["outputs_solved"]) == (0, 0.5, 1)
    assert r["pass_at_k"]["1"]["outputs_solved"] == 0 and r["pass_at_k"]["2"]["outputs_solved"] == 1
    assert r["missing_tasks"] == ["ccc"] and r["unknown_tasks"] == ["zzz"]
    assert r["malformed"] == 1 and "2 entries but task ddd has 1 test inputs" in r["malformed_files"][0]["reason"]
    lenient = {k: v["outputs_solved"] for k, v in r["lenient"].items()}
    # aaa/0 exact; bbb/0 at 75% cells; aaa/1 has a 1x1 attempt with the right shape but no right cell.
    assert lenient == {"exact": 1, "cells>=90%": 1, "cells>=75%": 2, "cells>=50%": 2, "shape": 3}
    assert r["lenient"]["shape"]["strict_solved"] == 2 and r["lenient"]["cells>=75%"]["per_output_score"] == 1.5


def test_attempts_option_caps_what_counts(tmp_path):
    _task(tmp_path, "aaa", [[[1]]])
    (tmp_path / "s.json").write_text(json.dumps({"aaa": [{"attempt_1": [[2]], "attempt_2": [[1]]}]}))
    tasks = load_tasks(tmp_path / "data")
    assert score(load_predictions(tmp_path / "s.json"), tasks, attempts=1).to_dict()["strict_solved"] == 0
    assert score(load_predictions(tmp_path / "s.json"), tasks).to_dict()["strict_solved"] == 1
    with pytest.raises(ArcvdmError, match="--attempts 0: give a positive number"):
        score(load_predictions(tmp_path / "s.json"), tasks, attempts=0)


def test_conceptarc_per_concept_with_three_attempts(tmp_path, datasets_dir):
    tasks = load_answers("conceptarc", str(datasets_dir))
    wrong = None
    # The right answer as attempt 3 everywhere, except the first test input of every AboveBelow task.
    sub = {
        t.id: [{"attempt_1": wrong, "attempt_2": wrong, "attempt_3": wrong if (t.concept == "AboveBelow" and i == 0) else p.output.root}
               for i, p in enumerate(t.test)]
        for t in tasks
    }
    (tmp_path / "submission.json").write_text(json.dumps(sub))
    r = score(load_predictions(tmp_path / "submission.json"), tasks).to_dict()
    assert r["attempts"] == 3 and r["pass_at_k"]["2"]["outputs_solved"] == 0
    concepts = r["per_concept"]
    assert {c for c in CONCEPTARC_TABLE["human"] if c != "all"} <= set(concepts)
    above = concepts["AboveBelow"]
    assert above["outputs_solved"] == above["outputs_total"] - above["tasks"] and above["strict_solved"] == 0
    assert concepts["Center"]["accuracy"] == 1.0


def test_vision_run_mean_and_std(tmp_path):
    (tmp_path / "problems").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"family": "segmentation"}))
    for i, miou in enumerate([0.2, 0.4]):
        record = {"task_id": f"segmentation-n3-seed{i}", "family": "segmentation", "status": "done", "metrics": {"miou": miou}}
        (tmp_path / "problems" / f"segmentation-n3-seed{i}.json").write_text(json.dumps(record))
    (tmp_path / "problems" / "segmentation-n3-seed9.json").write_text(json.dumps({"task_id": "segmentation-n3-seed9", "status": "failed: x"}))
    (tmp_path / "problems" / "segmentation-n3-seed8.json").write_text("{")  # cut short: a failure, not silence
    r = score(load_predictions(tmp_path)).to_dict()
    assert r["problems"] == 2 and r["failed_problems"] == ["segmentation-n3-seed9", "segmentation-n3-seed8"]
    assert r["metrics"]["miou"]["mean"] == pytest.approx(0.3) and r["metrics"]["miou"]["std"] == pytest.approx(0.1414, abs=1e-4)


def test_paper_rows_and_conceptarc_table_recomputed_from_the_spreadsheet(baselines_dir):
    assert {r.name: r.value for r in PAPER_TABLE3}["CogVideoX1.5 (paper)"] == 16.75
    assert conceptarc_table_from_csv(baselines_dir / "conceptarc-paper") == CONCEPTARC_TABLE
    # The overall figures quoted in the notes: humans .91, Kaggle 1st .52, 2nd .28, GPT-4 T=0 .19.
    assert [round(CONCEPTARC_TABLE[s]["all"], 2) for s in CONCEPTARC_TABLE] == [0.91, 0.52, 0.28, 0.19]


def test_predictions_for_another_dataset_are_refused(baselines_dir, datasets_dir):
    tasks = load_answers("arc-agi-1/training", str(datasets_dir))
    with pytest.raises(ArcvdmError, match="none of its 400 tasks .* is in arc-agi-1/training: check --dataset"):
        score(load_predictions(baselines_dir / "claude_sonnet_20241022" / "submissions"), tasks)


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    done = subprocess.run([sys.executable, "-c", "from arcvdm.cli import main; main()", "score", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pass --dataset" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _right_only_late(tasks, late: int) -> dict:
    """Per task: attempts 1..late-1 wrong, attempt_<late> the answer (a prediction set that gives more than k attempts)."""
    sub = {}
    for t in tasks:
        wrong = [[(v + 1) % 10 for v in row] for row in t.test[0].output.root]
        sub[t.id] = [{**{f"attempt_{n}": wrong for n in range(1, late)}, f"attempt_{late}": p.output.root} for p in t.test]
    return sub


@pytest.mark.parametrize("layout, late", [("arc-agi-benchmarking", 3), ("kaggle", 5)])
def test_attempts_beyond_the_datasets_k_never_lift_the_headline(tmp_path, arc1_eval, datasets_dir, layout, late):
    sub = _right_only_late(list(arc1_eval)[:4], late)
    if layout == "kaggle":
        path = tmp_path / "submission.json"
        path.write_text(json.dumps(sub))
    else:
        path = tmp_path / "late-model" / "submissions"
        path.mkdir(parents=True)
        for task_id, entries in sub.items():
            (path / f"{task_id}.json").write_text(json.dumps(entries))
    args = ["score", str(path), "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir)]
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert (data["attempts"], data["attempts_given"]) == (2, late)
    assert (data["strict_solved"], data["per_output_score"], data["outputs_solved"]) == (0, 0.0, 0)
    assert data["lenient"]["exact"]["outputs_solved"] == 0
    outputs = sum(len(t.test) for t in list(arc1_eval)[:4])
    assert data["pass_at_k"]["2"]["outputs_solved"] == 0 and data["pass_at_k"][str(late)]["outputs_solved"] == outputs
    name = "submission" if layout == "kaggle" else "late-model"
    human = CliRunner().invoke(app, args, env={"COLUMNS": "300"}).output
    assert "strict 0/400 tasks" in human and f"pass@{late}" in human
    warning = [line for line in human.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"{name} gives {late} attempts per test output" in warning[0] and "1-2" in warning[0]
    compared = CliRunner().invoke(app, ["compare", str(path), str(path), "--dataset", "arc-agi-1/evaluation",
                                        "--data-dir", str(datasets_dir)], env={"COLUMNS": "300"}).output
    assert f"pass@{late}" not in compared and "0/400" in compared and f"{name} gives {late} attempts" in compared
    main = json.loads(CliRunner().invoke(app, ["compare", str(path), str(path), "--dataset", "arc-agi-1/evaluation",
                                               "--data-dir", str(datasets_dir), "--json"]).output)
    assert [s["strict_solved"] for s in main["sets"]] == [0, 0]


def test_conceptarc_counts_its_third_attempt_in_the_headline(tmp_path, datasets_dir):
    tasks = load_answers("conceptarc", str(datasets_dir))
    (tmp_path / "submission.json").write_text(json.dumps(_right_only_late(list(tasks)[:3], 3)))
    r = score(load_predictions(tmp_path / "submission.json"), tasks).to_dict()
    assert (r["attempts"], r["strict_solved"], r["attempts_warning"]) == (3, 3, None)


def test_kept_and_changed_tells_a_copy_miss_from_a_rule_miss():
    from arcvdm.scoring import kept_and_changed
    from arcvdm.tasks import Grid

    given = Grid([[1, 0], [0, 0]])
    truth = Grid([[1, 0], [0, 5]])  # the rule keeps three cells and changes one
    assert kept_and_changed(truth, truth, given) == ((3, 3), (1, 1))
    assert kept_and_changed(given, truth, given) == ((3, 3), (0, 1))  # the input copied: the rule missed
    assert kept_and_changed(Grid([[2, 0], [0, 5]]), truth, given) == ((2, 3), (1, 1))  # a kept cell drawn wrong
    assert kept_and_changed(Grid([[1, 0, 0]]), truth, given) == ((0, 3), (0, 1))  # another shape: nothing right
    assert kept_and_changed(None, truth, given) == ((0, 3), (0, 1))
    assert kept_and_changed(truth, truth, Grid([[1]])) is None  # the rule changes the shape: no cell-to-cell view
