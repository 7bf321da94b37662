"""CLI smoke tests of show, render, datasets and codec commands: `python -m pytest tests/test_cli_data.py -q`."""

import json
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.codec import decode, plan_for_task
from arcvdm.datasets import DATASETS
from arcvdm.tasks import load_task

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_show_draws_a_sample_task(samples_dir):
    out = invoke("show", str(samples_dir / "recolour.json"), "--answers")
    assert "<Task recolour | 3 train | 2 test>" in out
    assert "train[2]" in out and "test[1]" in out and "output 6x4" in out


def test_show_a_dataset_task(datasets_dir):
    out = invoke("show", "conceptarc:Center1")
    assert "| Center>" in out and "test[2]" in out


def test_show_malformed_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "ragged.json"
    bad.write_text(json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[0]]}], "test": [{"input": [[0]]}]}))
    result = subprocess.run([sys.executable, "-c", "from arcvdm.cli import main; main()", "show", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "ragged.json" in result.stderr and "train[0].input row 1" in result.stderr


def test_render_writes_pngs_and_gifs_that_decode(tmp_path, samples_dir):
    task_file = samples_dir / "gravity.json"
    out = tmp_path / "frames"
    invoke("render", str(task_file), "--out", str(out), "--layout", "anchored", "--trajectory", "tiles", "--frames", "17")
    task = load_task(task_file)
    plan = plan_for_task(task, "anchored")
    assert len(list(out.glob("*.png"))) == 2 * (len(task.train) + len(task.test))
    for i, pair in enumerate(task.train):
        frame = np.asarray(Image.open(out / f"train{i}-output.png").convert("RGB"))
        assert decode(frame, plan).grid == pair.output
        gif = Image.open(out / f"train{i}.gif")
        durations = []
        for k in range(gif.n_frames):  # Pillow merges identical consecutive frames, adding up their durations
            gif.seek(k)
            durations.append(gif.info["duration"])
        assert gif.size == (480, 480) and sum(durations) == 17 * 250


def test_render_rejects_bad_frame_count(tmp_path, samples_dir):
    result = runner.invoke(app, ["render", str(samples_dir / "flip-h.json"), "--out", str(tmp_path), "--frames", "1"])
    assert result.exit_code != 0 and "at least 2 frames" in str(result.exception)


def test_codec_check_summary_and_json(samples_dir):
    out = invoke("codec", "check", str(samples_dir), "--layout", "anchored", "--jpeg", "75")
    grids = sum(2 * len(t.train) + 2 * len(t.test) for t in map(load_task, samples_dir.glob("*.json")))
    assert f"{grids} grids, {grids} exact" in out
    data = json.loads(invoke("codec", "check", str(samples_dir), "--noise", "20", "--json"))
    assert data["grids"] == data["exact"] == grids and data["failures"] == [] and data["layout"] == "centered"


def test_codec_check_lists_failures(samples_dir):
    # Noise far beyond what the codec is built for must be reported, not crash.
    result = runner.invoke(app, ["codec", "check", str(samples_dir / "flip-h.json"), "--noise", "400", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["exact"] < data["grids"] and {"task", "pair", "reason"} <= set(data["failures"][0])


def test_datasets_list_and_download(tmp_path, monkeypatch, datasets_dir):
    out = invoke("datasets", "list")
    assert "arc-agi-2/training" in out and "1000" in out and "160" in out
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("ARCVDM_DATA")
    source = DATASETS.get("conceptarc").source
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in sorted((datasets_dir / "conceptarc").rglob("*.json")):  # MinimalTasks too: it must be skipped
            z.write(file, f"ConceptARC-{source.commit}/{file.relative_to(datasets_dir / 'conceptarc').as_posix()}")
    assert "160 tasks, checksum ok" in invoke("datasets", "download", "conceptarc", "--archive", str(archive))
    assert "not downloaded" in invoke("datasets", "list")  # the ARC-AGI ones
    assert str(tmp_path / "xdg") in invoke("datasets", "list")


def test_bench_codec_prints_the_ratio(samples_dir):
    out = invoke("bench", "codec", str(samples_dir))
    assert "centered" in out and "anchored" in out and "x" in out
