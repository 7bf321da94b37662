"""`arcvdm run --executor slurm` on a real SLURM cluster: `python -m pytest tests/test_slurm.py -q`.

Skipped when no cluster answers `sinfo`. CI starts one (`runners/slurm-local.sh up` in `.ci/run`); on a workstation:
`sudo bash runners/slurm-local.sh up`, then export the SLURM_CONF it prints. Each array task is a fresh Python process
(the submitting one's interpreter, environment and working directory) that loads the tiny backbone.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runner import images, problem_files  # results without timings, memory and where they ran; the PNGs

ARCVDM = str(Path(sys.executable).parent / "arcvdm")
# One thread on both sides (exported to the array tasks): frames are compared bit for bit, and the default count
# follows the machine's load, which changes the last bit of a frame (tests/test_threads.py).
FAST = ["--preset", "smoke", "--backbone", "tiny", "--steps", "2", "--eval-every", "1", "--sample-steps", "1",
        "--height", "48", "--width", "48", "--threads", "1"]
GOOD = ["flip-h", "recolour"]
COUNTS = ("problems", "done", "failed", "skipped", "test_solved_strict", "failures")

pytestmark = pytest.mark.slurm


def slurm_args(partition: str) -> list[str]:
    # What a CPU node of any size grants: no GPU, one core and 1 GB per problem.
    return ["--executor", "slurm", "--partition", partition, "--gpus-per-node", "0", "--cpus-per-task", "1",
            "--mem-gb", "1", "--time-min", "10"]


def counts(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    return {k: summary[k] for k in COUNTS}


def submitted(out: Path) -> dict[str, int]:
    """Each submission's job id and its number of array tasks, from the sbatch scripts submitit keeps in <out>/slurm/.

    submitit submits a single problem as a plain job (no --array)."""
    found = {}
    for script in (out / "slurm").glob("*_submission.sh"):
        match = re.search(r"^#SBATCH --array=0-(\d+)", script.read_text(), re.MULTILINE)
        found[script.name.split("_")[0]] = int(match.group(1)) + 1 if match else 1
    return found


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, samples_dir) -> Path:
    """Two sample tasks and one whose 30x30 grids load fine but cannot be drawn on the 48x48 canvas."""
    folder = tmp_path_factory.mktemp("tasks")
    for task_id in GOOD:
        shutil.copy(samples_dir / f"{task_id}.json", folder)
    grid = [[(r * 7 + c) % 10 for c in range(30)] for r in range(30)]
    (folder / "too-large.json").write_text(json.dumps({"train": [{"input": grid, "output": grid}],
                                                       "test": [{"input": grid, "output": grid}]}))
    return folder


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, dataset) -> Path:
    out = tmp_path_factory.mktemp("local")
    result = subprocess.run([ARCVDM, "run", str(dataset), "--out", str(out), *FAST], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr  # too-large fails
    return out


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, dataset, partition) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("slurm")
    result = subprocess.run([ARCVDM, "run", str(dataset), "--out", str(out), *FAST, *slurm_args(partition)],
                            capture_output=True, text=True, timeout=600)
    return out, result


def test_a_job_array_writes_what_a_local_run_writes(slurm_run, local_run, partition):
    out, result = slurm_run
    assert result.returncode == 1, result.stdout + result.stderr
    assert problem_files(out) == problem_files(local_run)
    assert images(out) == images(local_run)
    assert counts(out) == counts(local_run)
    # One array of three tasks went through sbatch to the partition, each task left its log.
    assert list(submitted(out).values()) == [3]
    script = next((out / "slurm").glob("*_submission.sh")).read_text()
    assert f"#SBATCH --partition={partition}" in script and "--gpus-per-node" not in script
    assert len(list((out / "slurm").glob("*_log.out"))) == 3


def test_a_problem_that_fails_in_its_job_is_recorded_and_the_others_finish(slurm_run):
    out, result = slurm_run
    records = problem_files(out)
    assert {task_id: records[task_id]["status"] for task_id in GOOD} == dict.fromkeys(GOOD, "done")
    failed = records["too-large"]
    assert failed["status"].startswith("failed: ArcvdmError: ") and "30x30" in failed["status"]  # the solver's refusal
    assert "Traceback" in failed["traceback"]
    assert f"too-large: {failed['status']}" in result.stderr


def test_an_array_the_cluster_refuses_is_one_line(tmp_path, dataset, partition):
    out = tmp_path / "run"
    result = subprocess.run([ARCVDM, "run", str(dataset), "--out", str(out), *FAST, *slurm_args(partition),
                             "--mem-gb", "100000000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip() and "problems:" not in line]  # bar aside
    assert "job array was refused" in line and "Memory specification" in line and "--mem-gb" in line
    assert not list((out / "problems").glob("*.json"))


def test_cancelling_the_array_and_rerunning_resumes(tmp_path, dataset, local_run, partition):
    out = tmp_path / "run"
    # One array task at a time, so that the cancel lands with some problems finished and some not.
    command = [ARCVDM, "run", str(dataset), "--tasks", ",".join(GOOD), "--out", str(out), *FAST,
               *slurm_args(partition), "--array-parallelism", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list((out / "problems").glob("*.json")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    (array_id,) = submitted(out)
    subprocess.run(["scancel", array_id], check=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stdout + stderr  # the run ends by itself, the unfinished problems failed
    statuses = {task_id: record["status"] for task_id, record in problem_files(out).items()}
    finished = sorted(t for t, status in statuses.items() if status == "done")
    cut = sorted(t for t, status in statuses.items() if status != "done")
    assert finished and cut, f"the cancel should land mid-array: {statuses}"
    assert all(f"SLURM job {array_id}_" in statuses[t] and "ended without a result" in statuses[t] for t in cut)

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(finished)} skipped" in resumed.stdout
    (second,) = set(submitted(out)) - {array_id}
    assert submitted(out)[second] == len(cut), "only the unfinished problems are resubmitted"
    reference = problem_files(local_run)
    assert problem_files(out) == {t: reference[t] for t in GOOD}
    assert images(out) == {k: v for k, v in images(local_run).items() if "too-large" not in k}
