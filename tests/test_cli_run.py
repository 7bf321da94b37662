"""`arcvdm run` through the CLI, opening what it wrote: `python -m pytest tests/test_cli_run.py -q`."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import arcvdm.solver
from arcvdm.cli import app
from arcvdm.cli.run import parse_set
from arcvdm.errors import ArcvdmError

ARCVDM = str(Path(sys.executable).parent / "arcvdm")
# The smoke preset cut to two checkpoints of one step on 48x48 videos: the same code paths, a few seconds a problem.
FAST = ["--preset", "smoke", "--steps", "2", "--eval-every", "1", "--sample-steps", "1", "--height", "48", "--width", "48"]


def invoke(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def test_tiny_backbone_end_to_end(tmp_path, samples_dir):
    out = tmp_path / "demo"
    result = invoke(str(samples_dir), "--tasks", "flip-h,recolour", "--out", str(out), *FAST, "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "2 problems: 2 done (0 skipped as already done), 0 failed" in result.output

    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == str(samples_dir) and config["backbone"] == "tiny"
    assert config["tasks"] == ["flip-h", "recolour"]  # the run's selection: what `arcvdm score` scores it on
    assert (config["train"]["steps"], config["train"]["eval_every"], config["sample"]["steps"]) == (2, 1, 1)
    assert config["train"]["seed"] == config["sample"]["seed"] == 7
    environment = json.loads((out / "environment.json").read_text())
    assert environment["versions"]["torch"] and "python" in environment
    # bf16 frozen weights on an accelerator, fp32 on CPU, and the attention kernel SDPA picks for them here
    assert environment["dtype"] == ("float32" if environment["device"] == "cpu" else "bfloat16")
    assert environment["attention"]["sdpa_kernel"] in {"FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"}

    for task_id, n_test in (("flip-h", 1), ("recolour", 2)):
        record = json.loads((out / "problems" / f"{task_id}.json").read_text())
        assert record["task_id"] == task_id and record["status"] == "done"
        assert [c["step"] for c in record["checkpoints"]] == [1, 2][: len(record["checkpoints"])]
        assert len(record["attempts"]) == n_test and "attempt_2" in record["attempts"][0]
        assert record["train_steps_run"] <= record["train_steps_fixed"] == 2
        pngs = sorted((out / "problems" / task_id).glob("*.png"))
        assert any(p.name.startswith("step") and "test" in p.name for p in pngs)
        assert Image.open(pngs[0]).size == (48, 48)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["problems"], summary["done"], summary["failed"]) == (2, 2, 0)

    # The same command again resumes: nothing is redone.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "problems").rglob("*") if p.is_file()}
    again = invoke(str(samples_dir), "--tasks", "flip-h,recolour", "--out", str(out), *FAST, "--seed", "7")
    assert again.exit_code == 0 and "2 skipped" in again.output
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_a_malformed_task_file_fails_alone(tmp_path, samples_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(samples_dir / "flip-h.json", data)
    (data / "broken.json").write_text('{"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": []}')

    def solve_problem(task, config, backbone, out_dir, progress=None):
        return {"task_id": task.id, "status": "done", "attempts": [{"attempt_1": p.output.root} for p in task.test]}

    monkeypatch.setattr(arcvdm.solver, "solve_problem", solve_problem)
    result = invoke(str(data), "--out", str(tmp_path / "run"), "--preset", "smoke")
    assert result.exit_code == 1
    assert "2 problems: 1 done (0 skipped as already done), 1 failed; test solved 1/2" in result.output
    assert result.output.count("TaskFormatError") == 1  # each failure listed once, at the end
    broken = json.loads((tmp_path / "run" / "problems" / "broken.json").read_text())
    assert broken["status"].startswith("failed: TaskFormatError: ") and "broken.json" in broken["status"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(summary["failures"]) == ["broken"] and summary["done"] == 1


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, samples_dir):
    base = [ARCVDM, "run", str(samples_dir), "--out", str(tmp_path), "--preset", "smoke"]
    for extra, message in ((["--executor", "slurmm"], "Did you mean 'slurm'?"),
                           (["--set", "train.stepz=3"], "train.stepz"),
                           (["--tasks", "flip-hh"], "Did you mean 'flip-h'?")):
        result = subprocess.run(base + extra, capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # A backbone that does not exist stops the run (exit 2) instead of failing every problem.
    result = subprocess.run(base + ["--backbone", "tinyy", "--limit", "1"], capture_output=True, text=True)
    assert result.returncode == 2 and "Did you mean 'tiny'?" in result.stderr.strip().splitlines()[-1]


def test_resume_with_another_config_is_refused(tmp_path, samples_dir):
    (tmp_path / "config.json").write_text(json.dumps({"preset": "smoke", "train": {"steps": 40}}))
    result = subprocess.run([ARCVDM, "run", str(samples_dir), "--out", str(tmp_path), "--preset", "smoke"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "use a new --out, or --no-resume to start over" in result.stderr


def test_set_reads_values_as_yaml():
    assert parse_set(["train.lr=0.0002", "augment.views=4", "train.early_stop=false"]) == {
        "train.lr": 0.0002, "augment.views": 4, "train.early_stop": False}
    with pytest.raises(ArcvdmError, match="KEY=VALUE"):
        parse_set(["train.lr"])


def test_smoke_arc_draws_any_arc_grid_and_the_error_names_the_size_that_works():
    from arcvdm.codec import plan_for_grids
    from arcvdm.config import load_config

    config = load_config("smoke-arc")
    assert (config.video.height, config.video.width) == (192, 192) and config.backbone == "tiny"
    for layout in ("centered", "anchored"):
        plan_for_grids([[[0] * 30] * 30], layout, 192, 192)  # the largest ARC grid fits
        with pytest.raises(ArcvdmError, match="use --height 192 --width 192 or larger"):
            plan_for_grids([[[0] * 30] * 30], layout, 176, 176)  # the next smaller size does not
    with pytest.raises(ArcvdmError, match="14x14 grids need cells of at least 4 px.*use --height 96 --width 96 or larger"):
        plan_for_grids([[[0] * 14] * 14], "centered", 64, 64)
    plan_for_grids([[[0] * 14] * 14], "centered", 96, 96)
    with pytest.raises(ArcvdmError, match="use --height 64 --width 192 or larger"):
        plan_for_grids([[[0] * 30]], "centered", 64, 64)  # one row: only the width must grow


def test_ctrl_c_with_several_workers_prints_the_clean_line_only(tmp_path, samples_dir):
    """Ctrl-C reaches every process of the terminal's group: the workers' own tracebacks go to their log."""
    import os
    import signal
    import time

    out = tmp_path / "run"
    # As from a terminal: a caller that ignores SIGINT (a `cmd &` of a non-interactive shell, nohup scripts) would
    # hand the ignore down, and Python keeps an inherited ignore instead of raising KeyboardInterrupt.
    run = subprocess.Popen([ARCVDM, "run", str(samples_dir), "--out", str(out), *FAST, "--steps", "50",
                            "--workers-per-gpu", "2", "--device", "cpu", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    # submitit writes each worker's log once its controller process runs and has started the worker
    while len(list((out / "workers").glob("*_log.err"))) < 2 and run.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    assert run.poll() is None, run.communicate()[1][-3000:]
    os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr[-3000:]
    assert "interrupted: rerun the same command to resume" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]


def test_the_count_to_solve_adds_up_to_the_bar(tmp_path, samples_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("flip-h", "recolour", "gravity"):
        shutil.copy(samples_dir / f"{name}.json", data)
    (data / "broken.json").write_text("{")

    def solve_problem(task, config, backbone, out_dir, progress=None):
        return {"task_id": task.id, "status": "done", "attempts": [{"attempt_1": p.output.root} for p in task.test]}

    monkeypatch.setattr(arcvdm.solver, "solve_problem", solve_problem)
    invoke(str(data), "--tasks", "flip-h", "--out", str(tmp_path / "run"), "--preset", "smoke")
    result = invoke(str(data), "--out", str(tmp_path / "run"), "--preset", "smoke")
    assert "4 problems: 2 to solve, 1 already done, 1 that cannot run (listed at the end); executor local" in result.output
    assert "/4 [" in result.output  # the bar below counts the same four


def test_a_problem_shows_its_steps_and_checkpoints_on_a_terminal_only(tmp_path, samples_dir):
    """Through a pseudo-terminal: the problem's own bar names each phase; in a log (no terminal) it is absent."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    command = [ARCVDM, "run", str(samples_dir), "--tasks", "flip-h", "--out", str(tmp_path / "tty"), *FAST, "--threads", "1"]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))  # 250 columns: whole bars
    run = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert run.wait(timeout=120) == 0
    terminal = b"".join(chunks).decode(errors="replace")
    for phase in ("flip-h:", "encoding 2 training videos", "training to step 1", "checkpoint 1 of 2: sampling 3 videos",
                  "checkpoint 2 of 2", "step/s"):
        assert phase in terminal, terminal[-2000:]
    logged = subprocess.run(command[:6] + [str(tmp_path / "log")] + command[7:], capture_output=True, text=True)
    assert logged.returncode == 0 and "training to step" not in logged.stderr and "problems:" in logged.stderr
