"""`arcvdm compare` and `arcvdm export`: `python -m pytest tests/test_compare_export.py -q`."""

import json

import pytest
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.compare import compare
from arcvdm.formats import load_predictions
from arcvdm.scoring import load_answers, score
from run_builder import write_run


@pytest.fixture(scope="module")
def arc1_eval(datasets_dir):
    return load_answers("arc-agi-1/evaluation", str(datasets_dir))


@pytest.fixture
def run(tmp_path, arc1_eval):
    tasks = list(arc1_eval)[:6]
    return write_run(tmp_path / "run", tasks, solved={tasks[0].id, tasks[1].id}, failed={tasks[5].id})


def test_exports_score_like_the_run(run, tmp_path, arc1_eval, datasets_dir):
    cli = CliRunner()
    assert cli.invoke(app, ["export", str(run), "--format", "kaggle", "--out", str(tmp_path / "submission.json")]).exit_code == 0
    out = cli.invoke(app, ["export", str(run), "--format", "arc-agi-benchmarking", "--out", str(tmp_path / "sub")])
    # A run that recorded no selection is exported on its whole dataset: the tasks it has not run as placeholders.
    assert out.exit_code == 0 and "400 task files" in out.output and "for 395 tasks without attempts" in out.output
    expected = score(load_predictions(run), arc1_eval).to_dict()
    assert expected["strict_solved"] == 2 and expected["missing"] == 395  # 394 not run + 1 failed
    for exported in (tmp_path / "submission.json", tmp_path / "sub"):
        got = score(load_predictions(exported), arc1_eval).to_dict()
        assert got["missing"] == 0  # every task is there, placeholders scoring wrong
        for key in ("strict_solved", "per_output_score", "outputs_solved", "outputs_total", "pass_at_k"):
            assert got[key] == expected[key], key
    # The run folder carries its dataset: --dataset may be omitted.
    data = json.loads(cli.invoke(app, ["score", str(run), "--data-dir", str(datasets_dir), "--json"]).output)
    assert data["strict_solved"] == 2 and data["compute_per_problem"]["forward_flops"] == pytest.approx(3e12)


def test_unknown_export_format(run, tmp_path):
    out = CliRunner().invoke(app, ["export", str(run), "--format", "csv", "--out", str(tmp_path / "x")])
    assert out.exit_code != 0 and "unknown export format 'csv'" in str(out.exception)


def test_compare_overlap_references_and_compute(run, tmp_path, arc1_eval, baselines_dir, datasets_dir):
    claude = baselines_dir / "claude_sonnet_20241022" / "submissions"
    scores = [score(load_predictions(p), arc1_eval) for p in (run, claude)]
    c = compare(scores, "arc-agi-1/evaluation").to_dict()
    claude_solved = scores[1].solved_ids()
    ours = scores[0].solved_ids()
    overlap = c["overlap"][0]
    assert (overlap["a"], overlap["b"]) == ("run", "claude_sonnet_20241022")
    assert overlap["both"] == len(ours & claude_solved) and overlap["b_only"] == len(claude_solved - ours) == 78 - overlap["both"]
    assert [r["name"] for r in c["references"]][:2] == ["OpenAI o1-preview", "Claude 3.5 Sonnet"]
    assert all(r["kind"] == "published, no predictions" for r in c["references"])
    out = CliRunner().invoke(app, ["compare", str(run), str(claude), "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir), "--wide"],
                             env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    for text in ("published, no predictions", "CogVideoX1.5 (paper)", "16.75%", "A only", "forward_flops/problem", "claude_sonnet_20241022"):
        assert text in out.output


def test_compare_same_named_sets_stay_apart(baselines_dir, datasets_dir):
    folder = str(baselines_dir / "open_ai_o1_preview_20241217" / "submissions")
    out = CliRunner().invoke(app, ["compare", folder, folder, "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir), "--json"])
    data = json.loads(out.output)
    assert [s["name"] for s in data["sets"]] == ["open_ai_o1_preview_20241217", "open_ai_o1_preview_20241217 (2)"]
    assert data["overlap"][0]["both"] == 85 and data["overlap"][0]["a_only"] == 0


def test_compare_runs_on_the_tasks_every_run_selected(tmp_path, arc1_eval, baselines_dir, datasets_dir):
    tasks = list(arc1_eval)[:4]
    ids = [t.id for t in tasks]
    a = write_run(tmp_path / "a", tasks[:3], solved={ids[0], ids[2]}, selection=ids[:3])
    b = write_run(tmp_path / "b", tasks[1:], solved={ids[1]}, selection=ids[1:])
    claude = str(baselines_dir / "claude_sonnet_20241022" / "submissions")
    args = ["compare", str(a), str(b), claude, "--data-dir", str(datasets_dir)]
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert (data["scope"], data["tasks_compared"], data["dataset_tasks"]) == ("run", 2, 400)
    assert [s["tasks"] for s in data["sets"]] == [2, 2, 2]  # the baseline is held to the same two tasks
    assert [s["strict_solved"] for s in data["sets"][:2]] == [1, 1] and data["sets"][1]["missing"] == 0
    table = CliRunner().invoke(app, args, env={"COLUMNS": "250"}).output
    assert "compared on the 2 of 400 tasks that every run folder selected (the intersection of the runs' selections" in table
    whole = json.loads(CliRunner().invoke(app, [*args, "--json", "--all-tasks"]).output)
    assert whole["scope"] == "dataset" and [s["tasks"] for s in whole["sets"]] == [400, 400, 400]

    apart = write_run(tmp_path / "c", tasks[3:], solved=set(), selection=ids[3:])
    out = CliRunner().invoke(app, ["compare", str(a), str(apart), "--data-dir", str(datasets_dir)])
    assert out.exit_code != 0 and "selected no task in common" in str(out.exception) and "--all-tasks" in str(out.exception)


def test_compare_a_run_on_another_dataset_is_refused_in_one_line(tmp_path, samples_dir, baselines_dir, datasets_dir):
    from arcvdm.tasks import load_tasks

    flip = load_tasks(samples_dir)["flip-h"]
    run = write_run(tmp_path / "run", [flip], solved=set(), dataset="tasks_json", selection=["flip-h"])
    out = CliRunner().invoke(app, ["compare", str(run), str(baselines_dir / "claude_sonnet_20241022" / "submissions"),
                                   "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir)])
    message = str(out.exception)
    assert out.exit_code != 0 and "\n" not in message
    assert message.startswith(str(run)) and "is in arc-agi-1/evaluation: check --dataset" in message
    assert "was made on tasks_json" in message


def test_compare_is_compact_by_default_wide_on_request(run, baselines_dir, datasets_dir):
    claude = str(baselines_dir / "claude_sonnet_20241022" / "submissions")
    args = ["compare", str(run), claude, "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir)]
    compact = CliRunner().invoke(app, args, env={"COLUMNS": "140"})
    assert compact.exit_code == 0, compact.output
    header = next(line for line in compact.output.splitlines() if "strict %" in line)
    assert "pass@1" not in compact.output and "forward_flops/problem" not in compact.output and "--wide" in compact.output
    assert "…" not in compact.output and len(header) <= 140  # nothing cut: the main columns fit 140 columns
    wide = CliRunner().invoke(app, [*args, "--wide"], env={"COLUMNS": "300"})
    assert wide.exit_code == 0, wide.output
    assert [t for t in ("pass@1", "pass@2", "(size given)", "forward_flops/problem") if t not in wide.output] == []


def test_score_tasks_from_a_run_scores_its_export_as_the_run(tmp_path, arc1_eval, datasets_dir):
    tasks = list(arc1_eval)[:6]
    run = write_run(tmp_path / "run", tasks, solved={tasks[0].id, tasks[1].id}, failed={tasks[5].id}, selection=[t.id for t in tasks])
    cli = CliRunner()
    assert cli.invoke(app, ["export", str(run), "--format", "kaggle", "--out", str(tmp_path / "submission.json")]).exit_code == 0
    as_run = json.loads(cli.invoke(app, ["score", str(run), "--data-dir", str(datasets_dir), "--json"]).output)
    whole = json.loads(cli.invoke(app, ["score", str(tmp_path / "submission.json"), "--dataset", "arc-agi-1/evaluation",
                                        "--data-dir", str(datasets_dir), "--json"]).output)
    scoped = cli.invoke(app, ["score", str(tmp_path / "submission.json"), "--tasks-from", str(run), "--data-dir", str(datasets_dir), "--json"])
    assert scoped.exit_code == 0, scoped.output
    scoped = json.loads(scoped.output)
    assert whole["missing"] == 394 and as_run["missing"] == 1 and scoped["missing"] == 0  # the failed task: placeholders
    for key in ("strict_solved", "per_output_score", "outputs_solved", "outputs_total", "pass_at_k", "lenient"):
        assert scoped[key] == as_run[key], key
    text = cli.invoke(app, ["score", str(tmp_path / "submission.json"), "--tasks-from", str(run), "--data-dir", str(datasets_dir)],
                      env={"COLUMNS": "300"})
    assert "scored on 6 of 400 tasks" in text.output and "2 attempts" in text.output
    one = cli.invoke(app, ["score", str(run), "--attempts", "1", "--data-dir", str(datasets_dir)], env={"COLUMNS": "300"})
    assert "· 1 attempt counted of 2 given ·" in one.output and "1 attempts" not in one.output
    refused = cli.invoke(app, ["score", str(run), "--tasks-from", str(tmp_path / "submission.json"), "--data-dir", str(datasets_dir)])
    assert refused.exit_code != 0 and "not a run folder that records its selected tasks" in str(refused.exception)


def _kaggle_strict_pass_at_2(submission_file, task_files: dict[str, dict]) -> int:
    """An independent reader of the ARC Prize Kaggle format: every task id present, every test output an object
    with exactly attempt_1 and attempt_2 grids; a task counts when each output equals one of its two attempts."""
    submission = json.loads(submission_file.read_text())
    assert set(submission) == set(task_files)
    solved = 0
    for task_id, task in task_files.items():
        entries = submission[task_id]
        assert isinstance(entries, list) and len(entries) == len(task["test"])
        for entry in entries:
            assert set(entry) == {"attempt_1", "attempt_2"}
            for grid in entry.values():
                assert isinstance(grid, list) and grid and all(isinstance(row, list) and row for row in grid)
                assert all(type(v) is int and 0 <= v <= 9 for row in grid for v in row)
        solved += all(pair["output"] in (e["attempt_1"], e["attempt_2"]) for e, pair in zip(entries, task["test"]))
    return solved


def test_an_independent_kaggle_reader_gets_the_runs_strict_pass_at_2(tmp_path, arc1_eval, datasets_dir):
    tasks = list(arc1_eval)[:7]
    ids = [t.id for t in tasks]
    folder = tmp_path / "data"  # a task folder with one task whose test outputs are withheld (a Kaggle test set's case)
    folder.mkdir()
    for t in tasks:
        data = t.to_dict()
        if t.id == ids[6]:
            for pair in data["test"]:
                del pair["output"]
        (folder / f"{t.id}.json").write_text(json.dumps(data))
    run = write_run(tmp_path / "run", tasks, solved={ids[0], ids[1]}, failed={ids[5]}, dataset=str(folder), selection=ids)
    truth = lambda t: [p.output.root for p in t.test]
    wrong = lambda t: [[(v + 1) % 10 for v in row] for row in t.test[0].output.root]

    def attempts(task_id: str, entries: list) -> None:
        path = run / "problems" / f"{task_id}.json"
        record = json.loads(path.read_text())
        record["attempts"] = entries
        path.write_text(json.dumps(record))

    # ConceptARC-style k=3: right only at attempt_3, which neither pass@2 nor the export may count
    attempts(ids[2], [{"attempt_1": wrong(tasks[2]), "attempt_2": wrong(tasks[2]), "attempt_3": g} for g in truth(tasks[2])])
    attempts(ids[3], [{"attempt_1": g, "attempt_2": None} for g in truth(tasks[3])])  # right, with a null second attempt
    (run / "problems" / f"{ids[4]}.json").write_text('{"task_id": "')  # a truncated problem file
    attempts(ids[6], [{"attempt_1": [[1]]} for _ in tasks[6].test])  # anchored-style answer to an unanswered task
    cli = CliRunner()
    out = cli.invoke(app, ["export", str(run), "--format", "kaggle", "--out", str(tmp_path / "submission.json")],
                     env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    warnings = [line for line in out.output.splitlines() if "placeholder grid" in line]
    assert len(warnings) == 1 and f"tasks without attempts ({ids[4]}, {ids[5]})" in warnings[0]
    scored = json.loads(cli.invoke(app, ["score", str(run), "--json"]).output)
    assert scored["pass_at_k"]["3"]["strict_solved"] == 4 and scored["pass_at_k"]["2"]["strict_solved"] == 3
    answered = {t.id: json.loads((folder / f"{t.id}.json").read_text()) for t in tasks[:6]}
    exported = json.loads((tmp_path / "submission.json").read_text())
    assert exported[ids[6]] == [{"attempt_1": [[1]], "attempt_2": [[0]]} for _ in tasks[6].test]
    del exported[ids[6]]  # not scoreable: the dataset withholds its outputs
    (tmp_path / "answered.json").write_text(json.dumps(exported))
    assert _kaggle_strict_pass_at_2(tmp_path / "answered.json", answered) == scored["pass_at_k"]["2"]["strict_solved"]
    assert "attempt_3" not in (tmp_path / "submission.json").read_text() and "null" not in (tmp_path / "submission.json").read_text()
