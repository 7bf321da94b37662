"""Hostile and broken inputs: one line each, no traceback, every good result kept.

`python -m pytest tests/test_hostile_inputs.py -q`
"""

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.errors import ArcvdmError
from arcvdm.formats import load_predictions
from arcvdm.scoring import score
from arcvdm.tasks import MAX_FILE_BYTES, MAX_PAIRS, load_tasks

FAST = ["--preset", "smoke", "--steps", "2", "--eval-every", "1", "--sample-steps", "1", "--height", "48", "--width", "48"]
DEEP = "[" * 100_000 + "]" * 100_000


def one_line_refusal(*args: str) -> str:
    """Run the real entry point; it must exit 2 with exactly one line on stderr."""
    result = subprocess.run([sys.executable, "-c", "from arcvdm.cli import main; main()", *args], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    return result.stderr


@pytest.fixture
def hostile(tmp_path, samples_dir):
    """A folder with one good task and, beside it, a deeply nested file, a task with 3500 train pairs, and a
    task without test outputs."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(samples_dir / "flip-h.json", data)
    (data / "deep.json").write_text(DEEP)
    pair = {"input": [[1, 2]], "output": [[2, 1]]}
    (data / "many.json").write_text(json.dumps({"train": [pair] * 3500, "test": [pair]}))
    unanswered = json.loads((samples_dir / "recolour.json").read_text())
    for p in unanswered["test"]:
        del p["output"]
    (data / "unanswered.json").write_text(json.dumps(unanswered))
    return data


def test_show_refuses_each_hostile_file_in_one_line(hostile, tmp_path):
    assert "deep.json: task deep: not valid JSON (nested too deeply" in one_line_refusal("show", str(hostile / "deep.json"))
    many = one_line_refusal("show", str(hostile / "many.json"))
    assert f"many.json: task many: 3500 train pairs, at most {MAX_PAIRS['train']} allowed" in many and "split the task" in many
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:  # sparse: the size alone must refuse it, before anything is read
        f.truncate(MAX_FILE_BYTES + 1)
    assert f"huge.json: task huge: 8.0 MB, at most {MAX_FILE_BYTES / 1e6:g} MB per task file" in one_line_refusal("show", str(huge))


def test_a_folder_keeps_its_good_tasks(hostile):
    tasks = load_tasks(hostile)
    assert sorted(tasks.ids()) == ["flip-h", "unanswered"]
    assert sorted(str(e).split(":")[0].rsplit("/", 1)[-1] for e in tasks.errors) == ["deep.json", "many.json"]
    result = CliRunner().invoke(app, ["codec", "check", str(hostile), "--layout", "anchored"])
    assert result.exit_code == 0, result.output
    assert "skipped malformed file:" in result.output and "nested too deeply" in result.output


def test_a_run_over_hostile_files_solves_the_good_task_then_scores_and_reports(hostile, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(hostile), "--out", str(out), *FAST])
    assert result.exit_code == 1, result.output  # problems failed: the run says so in its exit code
    status = {p.stem: json.loads(p.read_text())["status"] for p in (out / "problems").glob("*.json")}
    assert status["flip-h"] == "done"
    assert "nested too deeply" in status["deep"] and "3500 train pairs" in status["many"]
    # No test output under the centered layout: refused with the reason, never "done" with null attempts.
    assert status["unanswered"].startswith("failed: ArcvdmError: ") and "--layout anchored" in status["unanswered"]
    scored = CliRunner().invoke(app, ["score", str(out), "--json"])
    assert scored.exit_code == 0, scored.output
    data = json.loads(scored.output)
    assert (data["tasks"], data["unanswered_tasks"]) == (1, ["unanswered"])
    human = CliRunner().invoke(app, ["score", str(out)], env={"COLUMNS": "300"}).output
    assert "1 task has no test output in" in human and "unanswered" in human
    report = CliRunner().invoke(app, ["report", str(out)], env={"COLUMNS": "300"})
    assert report.exit_code == 0 and "1 task has no test output" in report.output and (out / "report" / "index.html").is_file()


def test_deeply_nested_prediction_files_are_malformed_not_fatal(tmp_path, samples_dir):
    tasks = load_tasks(samples_dir)
    preds = tmp_path / "preds"
    preds.mkdir()
    flip = tasks["flip-h"]
    (preds / "flip-h.json").write_text(json.dumps([{"attempt_1": p.output.root} for p in flip.test]))
    (preds / "gravity.json").write_text(DEEP)
    result = score(load_predictions(preds), tasks)
    assert result.exact.strict_solved == 1
    assert [m["file"].rsplit("/", 1)[-1] for m in result.malformed_files] == ["gravity.json"]
    assert "nested too deeply" in result.malformed_files[0]["reason"]


def test_a_dataset_without_any_answer_is_refused(tmp_path, hostile):
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(hostile / "unanswered.json", only)
    (tmp_path / "s.json").write_text(json.dumps({"unanswered": [{"attempt_1": [[0]]}]}))
    with pytest.raises(ArcvdmError, match="task unanswered has no test output, nor has any task scored here"):
        score(load_predictions(tmp_path / "s.json"), load_tasks(only))


@pytest.mark.parametrize("flag, value, expected", [
    ("--noise", "-5", "--noise -5: the noise sigma (0-255 pixel scale) must be 0 or more"),
    ("--noise", "nan", "--noise nan: the noise sigma"),
    ("--shift", "300", "--shift 300: the per-channel colour shift is on the 0-255 pixel scale"),
    ("--jpeg", "0", "--jpeg 0: JPEG quality runs from 1 to 100"),
    ("--jpeg", "101", "--jpeg 101: JPEG quality runs from 1 to 100"),
])
def test_codec_check_validates_perturbation_ranges(samples_dir, flag, value, expected):
    result = CliRunner().invoke(app, ["codec", "check", str(samples_dir / "flip-h.json"), flag, value])
    assert isinstance(result.exception, ArcvdmError) and expected in str(result.exception)


def test_scoring_a_model_folder_points_to_its_submissions(baselines_dir, datasets_dir):
    model = baselines_dir / "claude_sonnet_20241022"
    message = one_line_refusal("score", str(model), "--dataset", "arc-agi-1/evaluation", "--data-dir", str(datasets_dir))
    assert f"its predictions are in {model / 'submissions'}: arcvdm score {model / 'submissions'}" in message


def test_a_deeply_nested_coco_file_is_one_line(tmp_path):
    annotations = tmp_path / "coco" / "annotations" / "instances_val2017.json"
    annotations.parent.mkdir(parents=True)
    (tmp_path / "coco" / "val2017").mkdir()
    annotations.write_text(DEEP)
    result = CliRunner().invoke(app, ["vision", "run", "binary-segmentation", "--data", str(annotations), "--shots", "1",
                                      "--seeds", "1", "--preset", "vision-smoke", "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, ArcvdmError) and "not a COCO annotation file" in str(result.exception)
