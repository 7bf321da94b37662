"""Dataset runs: failures recorded, unsafe ids refused, resume, kill-and-resume, executors: `python -m pytest tests/test_runner.py -q`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit

import arcvdm.solver
from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.executors import slurm_executor
from arcvdm.runner import read_run_config, run_dataset, select_problems
from arcvdm.tasks import Task, TaskSet

ARCVDM = str(Path(sys.executable).parent / "arcvdm")
# The smoke preset cut to two checkpoints of one step on 48x48 videos: the same code paths, a few seconds a problem.
FAST = ["--preset", "smoke", "--steps", "2", "--eval-every", "1", "--sample-steps", "1", "--height", "48", "--width", "48"]
SAMPLE_IDS = "flip-h,erase-all"
VOLATILE = {"timings", "peak_memory_bytes", "worker"}  # measurements and where it ran, not results


def task(task_id: str) -> Task:
    return Task.from_dict({"train": [{"input": [[1, 0]], "output": [[0, 1]]}], "test": [{"input": [[2, 0]], "output": [[0, 2]]}]},
                          task_id)


def scripted_solver(outcomes: dict[str, object]):
    """A stand-in for solve_problem: per task id, 'solve' (attempt = the answer), 'wrong', or an exception to raise."""

    def solve_problem(task, config, backbone, out_dir, progress=None):
        outcome = outcomes[task.id]
        if isinstance(outcome, Exception):
            raise outcome
        answer = [p.output.root for p in task.test] if outcome == "solve" else [[[9]] for _ in task.test]
        return {"task_id": task.id, "status": "done", "attempts": [{"attempt_1": a, "attempt_2": None} for a in answer],
                "selection": {"solved_train_at": 2 if outcome == "solve" else None}, "seed": config.train.seed}

    return solve_problem


@pytest.fixture
def tasks_of(monkeypatch):
    """Make `load_dataset` return the given TaskSet, so a run can hold any task ids."""

    def use(taskset: TaskSet) -> None:
        monkeypatch.setattr("arcvdm.datasets.load_dataset", lambda spec, data_dir=None: taskset)

    return use


def problem_files(out: Path) -> dict[str, dict]:
    return {p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k not in VOLATILE}
            for p in sorted((out / "problems").glob("*.json"))}


def images(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "problems").rglob("*.png"))}


def test_a_failing_problem_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a"), task("b"), task("c")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem",
                        scripted_solver({"a": "solve", "b": FloatingPointError("loss is NaN at step 3\nmore"), "c": "wrong"}))
    summary = run_dataset("toy", load_config("smoke"), tmp_path, executor="local", log=lambda *_: None)
    records = problem_files(tmp_path)
    assert records["b"]["status"] == "failed: FloatingPointError: loss is NaN at step 3"
    assert "Traceback" in records["b"]["traceback"]
    assert records["a"]["status"] == records["c"]["status"] == "done"
    assert (summary.done, summary.failed, summary.test_solved, summary.exit_code) == (2, 1, 1, 1)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["failures"] == {"b": records["b"]["status"]} and written["test_solved_strict"] == 1


def test_a_task_folder_is_recorded_absolute(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"a": "solve"}))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    run_dataset("data", load_config("smoke"), "run", log=lambda *_: None)
    # `arcvdm score run` from another directory must still find the answers
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == str(tmp_path.resolve() / "data")


def test_unsafe_task_ids_are_refused_and_nothing_is_written_outside(tmp_path, monkeypatch, tasks_of):
    out = tmp_path / "run"
    tasks_of(TaskSet("toy", [task("../evil"), task(".hidden"), task("ok"), task("ok")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"ok": "solve"}))
    summary = run_dataset("toy", load_config("smoke"), out, log=lambda *_: None)
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert sorted(p.name for p in (out / "problems").iterdir()) == ["ok.json"]
    assert summary.failed == 3 and summary.done == 1
    unsafe = {k: v for k, v in summary.failures.items() if k.startswith("unsafe-")}
    assert len(unsafe) == 2 and not any("/" in k for k in unsafe)
    assert all("cannot be used as a file name" in status for status in unsafe.values())
    assert "appears twice" in summary.failures["duplicate-ok-3"]


def test_resume_skips_done_problems_and_redoes_failed_ones(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a"), task("b")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"a": "solve", "b": RuntimeError("CUDA out of memory")}))
    run_dataset("toy", load_config("smoke"), tmp_path, log=lambda *_: None)
    done_mtime = (tmp_path / "problems" / "a.json").stat().st_mtime_ns

    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"b": "solve"}))  # 'a' would raise KeyError
    summary = run_dataset("toy", load_config("smoke"), tmp_path, log=lambda *_: None)
    assert (tmp_path / "problems" / "a.json").stat().st_mtime_ns == done_mtime
    assert (summary.skipped, summary.done, summary.failed) == (1, 2, 0)

    summary = run_dataset("toy", load_config("smoke"), tmp_path, resume=False, log=lambda *_: None)
    assert summary.skipped == 0 and problem_files(tmp_path)["a"]["status"].startswith("failed: KeyError")


def test_resume_refuses_a_different_config(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"a": "solve"}))
    run_dataset("toy", load_config("smoke"), tmp_path, log=lambda *_: None)
    with pytest.raises(ArcvdmError, match=r"train.steps: \d+ -> 4111\).*new --out, or --no-resume"):
        run_dataset("toy", load_config("smoke", {"train.steps": 4111}), tmp_path)
    # Where a problem runs is not part of what it computes.
    run_dataset("toy", load_config("smoke", {"slurm.partition": "gpu"}), tmp_path, log=lambda *_: None)


def test_a_folder_from_before_a_field_existed_resumes_unless_the_field_changes_the_run(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a")]))
    monkeypatch.setattr(arcvdm.solver, "solve_problem", scripted_solver({"a": "solve"}))
    run_dataset("toy", load_config("smoke"), tmp_path, log=lambda *_: None)
    recorded = json.loads((tmp_path / "config.json").read_text())
    del recorded["train"]["lr_schedule"]  # as an arcvdm release before the field wrote it
    del recorded["augment"]["view_prompts"]
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    assert run_dataset("toy", load_config("smoke"), tmp_path, log=lambda *_: None).skipped == 1
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(ArcvdmError, match=r"train.lr_schedule: 'constant' -> 'cosine'"):
        run_dataset("toy", load_config("smoke", {"train.lr_schedule": "cosine"}), tmp_path)
    # Before train.first_frame was recorded, all-linear named today's block-linear set: peft's all-linear differs.
    del recorded["train"]["first_frame"]
    (tmp_path / "config.json").write_text(json.dumps({**recorded, "lora": {**recorded["lora"], "targets": "all-linear"}}))
    with pytest.raises(ArcvdmError, match=r"lora.targets: 'block-linear' -> 'all-linear'"):
        run_dataset("toy", load_config("smoke", {"lora.targets": "all-linear"}), tmp_path)
    assert run_dataset("toy", load_config("smoke", {"lora.targets": "block-linear"}), tmp_path,
                       log=lambda *_: None).skipped == 1


def test_the_selection_is_recorded_before_solving_and_grows_on_resume(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a"), task("b"), task("c")]))
    seen_at_solve_time = []

    def solve_problem(task, config, backbone, out_dir, progress=None):
        # What an interrupted run leaves: the selection must already be on disk while problems run.
        seen_at_solve_time.append(json.loads((tmp_path / "config.json").read_text())["tasks"])
        return scripted_solver({"a": "solve", "b": "wrong", "c": "solve"})(task, config, backbone, out_dir)

    monkeypatch.setattr(arcvdm.solver, "solve_problem", solve_problem)
    run_dataset("toy", load_config("smoke"), tmp_path, limit=2, log=lambda *_: None)
    assert seen_at_solve_time[0] == ["a", "b"]
    run_dataset("toy", load_config("smoke"), tmp_path, tasks=["c"], log=lambda *_: None)  # another selection resumes
    assert json.loads((tmp_path / "config.json").read_text())["tasks"] == ["a", "b", "c"]
    assert read_run_config(tmp_path)[1] == "toy"  # "tasks" is not a config field
    run_dataset("toy", load_config("smoke"), tmp_path, tasks=["b"], resume=False, log=lambda *_: None)
    assert json.loads((tmp_path / "config.json").read_text())["tasks"] == ["b"]


def test_problem_selection_by_ids_and_limit():
    taskset = TaskSet("toy", [task("a"), task("b"), task("c")])
    assert [p.key for p in select_problems(taskset, ["c", "a"], None)] == ["a", "c"]
    assert [p.key for p in select_problems(taskset, None, 2)] == ["a", "b"]
    with pytest.raises(ArcvdmError, match="Did you mean 'b'"):
        select_problems(taskset, ["bb"], None)


def test_slurm_array_parameters_without_a_cluster(tmp_path, monkeypatch):
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", staticmethod(lambda: 1))  # pretend `srun` exists
    config = load_config("paper-arc", {"slurm.partition": "gpu", "slurm.account": "lab", "slurm.time_min": 90})
    executor = slurm_executor(config, tmp_path)
    assert executor.folder == (tmp_path / "slurm").resolve()
    sbatch = executor._make_submission_file_text("python job.py", "uid")
    for line in ("--partition=gpu", "--account=lab", "--time=90", "--gpus-per-node=1", "--mem=64GB", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}" in sbatch
    # 0 GPUs asks for none: a partition without GPUs refuses any --gpus-per-node request (even =0 on some versions).
    cpu_only = slurm_executor(load_config("paper-arc", {"slurm.gpus_per_node": 0}), tmp_path)
    assert "--gpus" not in cpu_only._make_submission_file_text("python job.py", "uid")


def test_slurm_needs_sbatch(tmp_path, monkeypatch, tasks_of):
    tasks_of(TaskSet("toy", [task("a")]))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ArcvdmError, match="needs a SLURM cluster"):
        run_dataset("toy", load_config("smoke"), tmp_path / "run", executor="slurm")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the real tiny backbone, end to end


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, samples_dir):
    """An uninterrupted in-process run of two sample tasks: what every other path must reproduce."""
    from typer.testing import CliRunner

    from arcvdm.cli import app

    out = tmp_path_factory.mktemp("reference")
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--tasks", SAMPLE_IDS, "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    return out


def test_kill_and_resume_gives_the_uninterrupted_results(tmp_path, samples_dir, reference_run):
    command = [ARCVDM, "run", str(samples_dir), "--tasks", SAMPLE_IDS, "--out", str(tmp_path), *FAST]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "problems").glob("*.json")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_at_kill = len(list((tmp_path / "problems").glob("*.json")))
    assert finished_at_kill == 1, "the kill should land mid-run"

    (tmp_path / "problems" / ".erase-all.json.cut.tmp").write_text('{"task_id": "era')  # a write the kill cut short
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "problems").glob(".*.tmp"))
    assert f"{finished_at_kill} skipped" in resumed.stdout
    assert problem_files(tmp_path) == problem_files(reference_run)
    assert images(tmp_path) == images(reference_run)


def test_submitit_array_path_writes_the_same_files(tmp_path, reference_run):
    # One problem is enough to compare: each array task is a fresh process that loads the backbone (slow on CPU).
    config, dataset = read_run_config(reference_run)
    summary = run_dataset(dataset, config, tmp_path, tasks=["flip-h"], executor="submitit-local", log=lambda *_: None)
    assert (summary.done, summary.failed) == (1, 0)
    assert problem_files(tmp_path)["flip-h"] == problem_files(reference_run)["flip-h"]
    assert images(tmp_path) == {k: v for k, v in images(reference_run).items() if "flip-h" in k}
    assert list((tmp_path / "slurm").glob("*_log.out")), "submitit keeps each array task's log under <out>/slurm"


def test_two_workers_per_gpu_write_the_one_worker_results(tmp_path, samples_dir, reference_run):
    # On CPU: two worker processes, one problem each; every problem is seeded from the config alone.
    from typer.testing import CliRunner

    from arcvdm.cli import app

    args = ["run", str(samples_dir), "--tasks", SAMPLE_IDS, "--out", str(tmp_path), *FAST, "--workers-per-gpu", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "workers").glob("*_log.out"))) == 2, "two worker processes ran"
    assert problem_files(tmp_path) == problem_files(reference_run)
    assert images(tmp_path) == images(reference_run)


def test_an_array_task_solves_workers_per_gpu_problems_at_once(tmp_path, reference_run):
    config, dataset = read_run_config(reference_run)
    config = config.model_copy(update={"workers_per_gpu": 2})
    summary = run_dataset(dataset, config, tmp_path, tasks=SAMPLE_IDS.split(","), executor="submitit-local",
                          log=lambda *_: None)
    assert (summary.done, summary.failed) == (2, 0)
    assert len(list((tmp_path / "slurm").glob("*_log.out"))) == 1, "one array task for both problems"
    assert problem_files(tmp_path) == problem_files(reference_run)
