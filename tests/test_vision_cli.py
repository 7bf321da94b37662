"""End-to-end `arcvdm vision run` of two families on synthetic data with the tiny backbone: python -m pytest tests/test_vision_cli.py -q"""

import json
import subprocess
import sys

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from arcvdm.cli import app

SMOKE = ["--data", "synthetic", "--shots", "2", "--seeds", "1", "--eval", "2", "--preset", "vision-smoke"]


def _run(*args):
    result = CliRunner().invoke(app, ["vision", "run", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_two_families_end_to_end_then_resume(tmp_path):
    for family, metric in (("binary-segmentation", "miou"), ("grid-classification", "accuracy")):
        out = tmp_path / family
        output = _run(family, *SMOKE, "--out", str(out))
        assert "1/1 problems done" in output and "±" not in output  # one seed: no standard deviation

        record = json.loads((out / "problems" / f"{family}-n2-seed0.json").read_text())
        assert record["status"] == "done" and record["family"] == family
        assert [c["step"] for c in record["checkpoints"]] == [2, 4]  # vision-smoke: 4 steps, evaluated every 2
        assert 0.0 <= record["metrics"][metric] <= 1.0
        assert record["train_steps_run"] == 4 and record["sampler_calls"] == 4 and record["forward_flops"] > 0
        assert len(record["train_items"]) == 2 and len(record["eval_items"]) == 2
        assert (out / "problems" / f"{family}-n2-seed0" / "train1.gif").is_file()
        for name in record["checkpoints"][-1]["images"]:
            picture = np.asarray(Image.open(out / "problems" / name))
            assert picture.shape == (64, 3 * 64 + 2 * 4, 3)  # input | target | prediction

        config = json.loads((out / "config.json").read_text())
        assert (config["family"], config["backbone"], config["dataset"]) == (family, "tiny", "synthetic")
        summary = json.loads((out / "summary.json").read_text())
        assert summary["done"] == 1 and summary["metrics"][metric]["n"] == 1
        assert (out / "environment.json").is_file()

    output = _run("grid-classification", *SMOKE, "--out", str(tmp_path / "grid-classification"))
    assert "(1 already)" in output
    # Another shot count in the same folder would be averaged with these: refused, nothing written.
    other = [*SMOKE[:3], "3", *SMOKE[4:]]  # --shots 3
    result = CliRunner().invoke(app, ["vision", "run", "grid-classification", *other, "--out", str(tmp_path / "grid-classification")])
    assert result.exit_code != 0 and "vision.shots: 2 -> 3" in str(result.exception or result.output)
    assert not (tmp_path / "grid-classification" / "problems" / "grid-classification-n3-seed0.json").exists()


def test_unknown_names_are_one_line_errors_before_anything_is_written(tmp_path):
    main = [sys.executable, "-c", "from arcvdm.cli import main; main()", "vision", "run"]
    for args, hint in ((["segmentation"], "Did you mean 'binary-segmentation'"),
                       (["zoom", "--preset", "vision-smoke", "--trajectory", "quadratc"], "Did you mean 'quadratic'")):
        result = subprocess.run([*main, *args, "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert hint in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_failing_problem_is_recorded_and_the_run_goes_on(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "run"
    args = ["vision", "run", "flip-vertical", "--data", str(tmp_path), "--shots", "5", "--seeds", "2", "--eval", "1",
            "--preset", "vision-smoke", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "0/2 problems done" in result.output and "2 failed" in result.output
    record = json.loads((out / "problems" / "flip-vertical-n5-seed1.json").read_text())
    assert record["status"].startswith("failed: ArcvdmError") and "need 5" in record["status"]
