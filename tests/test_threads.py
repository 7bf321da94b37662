"""CPU threads: `--threads N`, the default from the cores other work leaves free, and decoded results that do not
depend on the count. Speed is measured by `runners/threads_bench.sh`, not here: `python -m pytest tests/test_threads.py -q`."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.environment import busy_cores, default_threads, usable_cores, use_threads
from arcvdm.errors import ArcvdmError

# The tiny backbone at one sampling step: where 1 and 2 threads were seen to differ in the last bit of a frame.
FAST = ["--preset", "smoke", "--backbone", "tiny", "--steps", "2", "--eval-every", "1", "--sample-steps", "1",
        "--height", "48", "--width", "48"]


@pytest.fixture
def keep_threads():
    """The count is process-wide: later tests keep the suite's."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("cores, busy, workers, expected", [
    (2, 0.0, 1, 2),  # idle: every core
    (2, 1.0, 1, 1),  # one busy job on two cores: the free one
    (2, 0.4, 1, 2),  # less than half a core taken: still free
    (2, 0.6, 1, 1),
    (2, 3.5, 1, 1),  # more work than cores: never below 1
    (16, 4.0, 3, 4),  # 12 free cores shared by 3 workers
    (2, 0.0, 4, 1),
])
def test_the_default_takes_the_free_cores_shared_by_the_workers(cores, busy, workers, expected):
    assert default_threads(cores, busy, workers) == expected


def test_threads_flag_then_the_callers_variable_then_the_default(keep_threads):
    assert use_threads(3, environ={})["threads"] == torch.get_num_threads() == 3
    chosen = use_threads(None, environ={"OMP_NUM_THREADS": "2"})
    assert (chosen["threads"], chosen["chosen_by"]) == (2, "OMP_NUM_THREADS")
    chosen = use_threads(None, environ={})
    assert 1 <= chosen["threads"] <= len(usable_cores()) and chosen["chosen_by"].startswith("default: ")
    with pytest.raises(ArcvdmError, match="--threads 0: give the number of CPU threads per process, at least 1"):
        use_threads(0, environ={})


def test_a_busy_loop_shows_as_a_busy_core():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert busy_cores(usable_cores(), seconds=0.5) >= 0.7
    finally:
        busy.kill()
        busy.wait()


def test_the_thread_count_is_recorded_and_changes_no_decoded_result(tmp_path, samples_dir, keep_threads):
    """Two problems with 1 and with 2 threads: the same attempts and checkpoint predictions. The frames may differ
    in the last bit (the count changes the order of float sums: recolour's differ by one level in two values of a
    48x48 frame), never by more than the palette's decoding absorbs."""
    runs = {}
    for threads in (1, 2):
        out = tmp_path / f"threads-{threads}"
        result = CliRunner().invoke(app, ["run", str(samples_dir), "--tasks", "flip-h,recolour", "--out", str(out),
                                          *FAST, "--threads", str(threads)])
        assert result.exit_code == 0, result.output
        environment = json.loads((out / "environment.json").read_text())
        assert environment["threads"]["threads"] == environment["torch_threads"] == threads
        assert environment["threads"]["chosen_by"] == "--threads"
        records = {t: json.loads((out / "problems" / f"{t}.json").read_text()) for t in ("flip-h", "recolour")}
        frames = {p.relative_to(out): np.asarray(Image.open(p), dtype=np.int16)
                  for p in sorted((out / "problems").glob("*/*.png"))}
        runs[threads] = ({t: (r["attempts"], r["checkpoints"]) for t, r in records.items()}, frames)
    assert runs[1][0] == runs[2][0]
    assert runs[1][1] and runs[1][1].keys() == runs[2][1].keys()
    assert max(int(np.abs(runs[1][1][k] - runs[2][1][k]).max()) for k in runs[1][1]) <= 2
