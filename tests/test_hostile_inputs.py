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


# ------------------------------------------------ issue 26: nonsense values refused before any work, words not reprs

@pytest.mark.parametrize("flags, expected", [
    (["--lr", "-1"], "train.lr: Input should be greater than 0"),
    (["--lr", "nan"], "train.lr: Input should be a finite number"),
    (["--guidance", "-3"], "sample.guidance_scale: Input should be greater than or equal to 1"),
    (["--guidance", "inf"], "sample.guidance_scale: Input should be a finite number"),
    (["--seed", "-1"], "train.seed: Input should be greater than or equal to 0"),
    (["--alpha", "0"], "lora.alpha: Input should be greater than or equal to 1"),
    (["--set", "train.betas=[0.9, 1.5]"], "train.betas.1: Input should be less than 1"),
    (["--set", "train.weight_decay=-0.1"], "train.weight_decay: Input should be greater than or equal to 0"),
    (["--set", "train.max_grad_norm=0"], "train.max_grad_norm: Input should be greater than 0"),
    (["--height", "100000", "--width", "100000"], "video.height: Input should be less than or equal to 4096"),
    (["--set", "slurm.time_min=0"], "slurm.time_min: Input should be greater than or equal to 1"),
])
def test_nonsense_numbers_fail_at_the_config_check(tmp_path, samples_dir, flags, expected):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--out", str(out), "--preset", "smoke", *flags])
    assert isinstance(result.exception, ArcvdmError), result.output
    assert expected in str(result.exception) and "\n" not in str(result.exception)
    assert not out.exists()  # refused before the run folder, the backbone or any training


def test_a_nan_learning_rate_is_one_line_from_the_real_entry_point(tmp_path, samples_dir):
    message = one_line_refusal("run", str(samples_dir), "--out", str(tmp_path / "run"), "--preset", "smoke", "--lr", "nan")
    assert "train.lr: Input should be a finite number" in message


def test_mini_bench_task_counts_in_words(tmp_path):
    zero = CliRunner().invoke(app, ["mini-bench", "--out", str(tmp_path / "zero"), "--tasks", "0"])
    assert isinstance(zero.exception, ArcvdmError)
    assert str(zero.exception) == "--tasks 0: give the number of tasks to generate, at least 1 (default 100)"
    # Three tasks reach three families, all inside pretraining: the outside side has none, said in words.
    three = CliRunner().invoke(app, ["mini-bench", "--out", str(tmp_path / "three"), "--tasks", "3", "--preset", "smoke",
                                     "--set", "train.steps=1", "--set", "train.eval_every=1", "--set", "sample.steps=1",
                                     "--threads", "1"])
    assert three.exit_code == 0, three.output
    outside = next(line for line in three.output.splitlines() if line.strip().startswith("outside:"))
    assert "outside: no tasks (--tasks 3 reaches the first 3 of" in outside and "give --tasks" in outside
    assert "None" not in three.output and "0/0" not in three.output


def test_pretrain_mini_checks_its_out_folder_before_training(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    for out, expected in (("/proc/arcvdm-mini", "--out /proc/arcvdm-mini: cannot write here"),
                          (str(file / "mini"), f"{file} is a file, not a folder")):
        result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", out])
        assert isinstance(result.exception, ArcvdmError) and expected in str(result.exception), result.output
    minutes = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(tmp_path / "m"), "--minutes", "-2"])
    assert "--minutes -2: give a positive number of minutes" in str(minutes.exception)


@pytest.mark.parametrize("command", ["render", "codec check"])
def test_a_canvas_beyond_the_ceiling_is_one_line(tmp_path, samples_dir, command):
    extra = ["--out", str(tmp_path / "r")] if command == "render" else []
    result = CliRunner().invoke(app, [*command.split(), str(samples_dir / "flip-h.json"), "--height", "100000",
                                      "--width", "100000", *extra])
    assert isinstance(result.exception, ArcvdmError), result.output
    assert str(result.exception).startswith("--height 100000 --width 100000: each side must be 1 to 4096 px (a "
                                            "100000x100000 RGB frame is 30 GB)")


def test_inspect_and_report_say_the_selection_and_counts_in_words(tmp_path, samples_dir):
    from run_builder import write_run

    tasks = list(load_tasks(samples_dir / "flip-h.json"))
    out = write_run(tmp_path / "run", tasks, solved=set(), dataset=str(samples_dir / "flip-h.json"))
    record_path = out / "problems" / "flip-h.json"
    record = json.loads(record_path.read_text())
    one_off = [row[:] for row in tasks[0].test[0].output.root]
    one_off[0][0] = (one_off[0][0] + 1) % 10
    record["attempts"][0]["attempt_1"] = one_off  # one cell from the answer
    record_path.write_text(json.dumps(record))
    shown = CliRunner().invoke(app, ["inspect", str(out), "flip-h"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "selection: the paper rule, 2 attempts per test input; every train pair exact from step 10" in shown.output
    assert "{'" not in shown.output
    report = CliRunner().invoke(app, ["report", str(out)])
    assert report.exit_code == 0, report.output
    page = (out / "report" / "problems" / "flip-h.html").read_text()
    assert "difference: 1 cell<" in page and "1 cells" not in page
