"""Output paths: one-line refusals for --out that cannot be written, umask-honouring files, corrupt problem files named.

`python -m pytest tests/test_outputs.py -q`
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.errors import ArcvdmError, OutputError
from arcvdm.io import atomic_write_bytes, atomic_write_json, safe_name
from arcvdm.scoring import load_answers
from arcvdm.tasks import TaskSet, load_tasks
from run_builder import write_run

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "tasks_json" / "flip-h.json")
VISION = ["vision", "run", "zoom", "--data", "synthetic", "--shots", "1", "--seeds", "1", "--eval", "1", "--preset", "vision-smoke"]


@pytest.fixture(scope="module")
def tasks(datasets_dir):
    return list(load_answers("arc-agi-1/evaluation", str(datasets_dir)))[:3]


@pytest.fixture
def run(tmp_path, tasks):
    return write_run(tmp_path / "run", tasks, solved={tasks[0].id}, selection=[t.id for t in tasks])


def commands(run: Path, out: Path) -> dict[str, list[str]]:
    """Every command that writes under --out, pointed at `out`."""
    return {
        "run": ["run", SAMPLE, "--preset", "smoke", "--out", str(out)],
        "report": ["report", str(run), "--out", str(out)],
        "render": ["render", SAMPLE, "--out", str(out), "--height", "64", "--width", "64"],
        "export arc-agi-benchmarking": ["export", str(run), "--format", "arc-agi-benchmarking", "--out", str(out)],
        "export kaggle": ["export", str(run), "--format", "kaggle", "--out", str(out / "submission.json")],
        "vision run": [*VISION, "--out", str(out)],
    }


def refusal(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, OutputError), (args, result.output, result.exception)
    message = str(result.exception)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("command", list(commands(Path("r"), Path("o"))))
def test_an_existing_file_as_out_is_one_line(tmp_path, run, command):
    in_the_way = tmp_path / "taken"
    in_the_way.write_text("mine")
    args = commands(run, in_the_way)[command]
    message = refusal(args)
    assert str(in_the_way) in message and ("give" in message) and in_the_way.read_text() == "mine"


@pytest.mark.parametrize("command", ["run", "report", "render", "export arc-agi-benchmarking", "vision run"])
def test_a_folder_below_a_file_is_one_line(tmp_path, run, command):
    (tmp_path / "file").write_text("mine")
    message = refusal(commands(run, tmp_path / "file" / "out")[command])
    assert f"{tmp_path / 'file'} is a file, not a folder" in message


def test_export_kaggle_to_a_folder_names_a_file_to_give(tmp_path, run):
    message = refusal(["export", str(run), "--format", "kaggle", "--out", str(tmp_path)])
    assert f"give a file path such as {tmp_path / 'submission.json'}" in message


def test_any_os_refusal_is_one_line_and_leaves_nothing(tmp_path, run, monkeypatch):
    # A read-only mount, a quota, a full disk: whatever the OS says, one line naming the path.
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    message = refusal(["report", str(run), "--out", str(tmp_path / "report")])
    assert f"{tmp_path / 'report'}: cannot write here (Read-only file system)" in message
    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'x.json'} \\(Read-only file system\\)"):
        atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "run"]  # no temporary file left


def _without_override() -> list[str] | None:
    """A command prefix under which permission bits bind (root keeps them only without CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"] if setpriv else None


def test_a_read_only_folder_is_one_line(tmp_path, run):
    prefix = _without_override()
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    probe = subprocess.run([*(prefix or []), sys.executable, "-c", f"open({str(read_only / 'x')!r}, 'w')"], capture_output=True)
    if prefix is None or probe.returncode == 0:
        pytest.skip("cannot make a folder read-only for this user here (root without setpriv)")
    for command in ("render", "export kaggle", "report"):
        args = commands(run, read_only / "out" if command == "report" else read_only)[command]
        result = subprocess.run([*prefix, sys.executable, "-c", "from arcvdm.cli import main; main()", *args],
                                capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (command, result.stderr)
        assert "Permission denied" in result.stderr and str(read_only) in result.stderr
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "atomic.json", b"{}")
        (tmp_path / "plain.json").write_bytes(b"{}")
    finally:
        os.umask(previous)
    mode = (tmp_path / "atomic.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_truncated_problem_file_is_named_by_export_report_and_inspect(tmp_path, run, tasks, datasets_dir):
    broken = run / "problems" / f"{tasks[1].id}.json"
    broken.write_text(broken.read_text()[:100])
    cli = CliRunner()
    out = cli.invoke(app, ["export", str(run), "--format", "kaggle", "--out", str(tmp_path / "s.json")], env={"COLUMNS": "300"})
    assert out.exit_code == 0 and "(3 tasks, " in out.output, out.output
    exported = json.loads((tmp_path / "s.json").read_text())[tasks[1].id]  # the selected task is there, as placeholders
    assert exported == [{"attempt_1": [[0]], "attempt_2": [[0]]}] * len(tasks[1].test)
    assert f"malformed {broken}: not valid JSON" in out.output and "exported as placeholders" in out.output
    report = cli.invoke(app, ["report", str(run), "--data-dir", str(datasets_dir)], env={"COLUMNS": "300"})
    assert report.exit_code == 0 and f"malformed {tasks[1].id}: malformed problem file {broken}: not valid JSON" in report.output
    shown = cli.invoke(app, ["inspect", str(run), tasks[1].id, "--data-dir", str(datasets_dir)], env={"COLUMNS": "300"})
    assert f"malformed problem file {broken}: not valid JSON" in shown.output and "no result" not in shown.output


@pytest.mark.parametrize("task_id", ["flïp-ü", "a b", "x..y", "007bbfb7", "Ünïcödé_1.2", "漢字"])
def test_ordinary_ids_are_their_own_file_names(task_id):
    assert safe_name(task_id) == task_id


def test_a_file_name_is_the_ids_nfc_form():
    decomposed = "cafe\u0301"  # 'café' as macOS file systems spell it
    assert safe_name(decomposed) == "caf\u00e9" == unicodedata.normalize("NFC", decomposed)


@pytest.mark.parametrize("task_id, why", [
    ("a/b", "'/' is not allowed"), ("a\\b", "is not allowed"), ("a\x00b", "is not allowed"), ("a\nb", "is not allowed"),
    ("..", "leading dot"), (".hidden", "leading dot"), ("", "empty"), (" a", "spaces"), ("a.", "trailing dot"),
    ("con", "device name"), ("LPT1.x", "device name"), ("a:b", "is not allowed"), ("x.json", "ends in .json"),
    ("\u202eevil", "is not allowed"), ("é" * 101, "202 bytes in UTF-8, at most 200"),
])
def test_unsafe_ids_are_refused_in_one_line(task_id, why):
    with pytest.raises(ArcvdmError, match="cannot be used as a file name") as refused:
        safe_name(task_id)
    assert why in str(refused.value) and "\n" not in str(refused.value)


def test_ids_that_share_a_file_on_a_case_insensitive_filesystem_are_refused(samples_dir):
    from arcvdm.runner import select_problems

    flip = load_tasks(samples_dir)["flip-h"]
    same = [flip.model_copy(update={"id": i}) for i in ("Flip-H", "flip-h", "fli\u0308p", "fl\u00efp")]
    problems = select_problems(TaskSet("toy", same), None, None)
    assert [p.error is None for p in problems] == [True, False, True, False]
    assert "and 'Flip-H' would share one file name" in problems[1].error
    assert "and 'fli\u0308p' would share one file name" in problems[3].error
    # --tasks typed in the other Unicode form selects the task the dataset spells differently
    assert [p.key for p in select_problems(TaskSet("toy", same), ["fl\u00efp"], None)] == ["fli\u0308p"]
