"""Prediction readers and writers: `python -m pytest tests/test_formats.py -q`."""

import json

import pytest

from arcvdm.errors import ArcvdmError
from arcvdm.formats import build_export, load_predictions, parse_task_entries, write_arc_agi_benchmarking, write_kaggle
from arcvdm.tasks import Grid, TaskSet, load_tasks


def test_attempt_forms_grid_null_answer_object_and_bare_grid():
    pred = parse_task_entries(
        [{"attempt_1": [[1, 2]], "attempt_2": None}, {"attempt_1": {"answer": [[3]], "metadata": {"cost": 1}}, "attempt_2": {"answer": None}},
         [[4, 4]], None],
        "t", "t.json",
    )
    assert pred.entries == [[Grid([[1, 2]]), None], [Grid([[3]]), None], [Grid([[4, 4]])], []]
    assert pred.issues == [] and not pred.unusable


@pytest.mark.parametrize(
    "entries, reason",
    [
        ([{"attempt_1": [[1, 2], [3]]}], "test 0 attempt_1 row 1: 1 cells but row 0 has 2"),
        ([{"attempt_1": [[10]]}], "value 10 is not an integer 0-9"),
        ([{"attempt_1": []}], "non-empty list of rows"),
        ([{"attempt_1": {"metadata": {}}}], "needs an 'answer' grid"),
        ([{"answer": [[1]]}], "no attempt_1/attempt_2 keys"),
        ([7], "an entry must be an object"),
    ],
)
def test_bad_attempts_are_reported_and_become_none(entries, reason):
    pred = parse_task_entries(entries, "t", "t.json")
    assert reason in pred.reason()
    assert all(a is None for attempts in pred.entries for a in attempts)
    assert not pred.unusable


def test_a_bad_attempt_keeps_its_valid_sibling():
    pred = parse_task_entries([{"attempt_1": [[1, 10]], "attempt_2": [[1, 1]]}], "t", "t.json")
    assert pred.entries == [[None, Grid([[1, 1]])]]
    assert pred.reason().startswith("test 0 attempt_1 row 0 col 1")


def test_folder_with_broken_files_loads_the_rest(tmp_path):
    (tmp_path / "aaa.json").write_text(json.dumps([{"attempt_1": [[1]]}]))
    (tmp_path / "bbb.json").write_text("{not json")
    (tmp_path / "ccc.json").write_text(json.dumps({"attempt_1": [[1]]}))
    pset = load_predictions(tmp_path)
    assert pset.kind == "arc-agi-benchmarking" and set(pset.tasks) == {"aaa", "bbb", "ccc"}
    assert not pset.tasks["aaa"].unusable
    assert pset.tasks["bbb"].unusable and "not valid JSON" in pset.tasks["bbb"].reason()
    assert pset.tasks["ccc"].unusable and "must be a list" in pset.tasks["ccc"].reason()


def test_submissions_folder_is_named_after_its_model(tmp_path):
    folder = tmp_path / "some_model" / "submissions"
    folder.mkdir(parents=True)
    (folder / "aaa.json").write_text("[]")
    assert load_predictions(folder).name == "some_model"


def test_kaggle_file_and_unreadable_inputs(tmp_path):
    sub = tmp_path / "submission.json"
    sub.write_text(json.dumps({"aaa": [{"attempt_1": [[1]], "attempt_2": [[2]]}], "bbb": "oops"}))
    pset = load_predictions(sub)
    assert pset.kind == "kaggle" and pset.tasks["aaa"].entries == [[Grid([[1]]), Grid([[2]])]]
    assert pset.tasks["bbb"].unusable
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ArcvdmError, match="bad.json: not valid JSON"):
        load_predictions(tmp_path / "bad.json")
    with pytest.raises(ArcvdmError, match="no such prediction file"):
        load_predictions(tmp_path / "nope")


def test_run_folder_failed_problems_have_no_predictions(tmp_path):
    (tmp_path / "problems").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"family": "arc", "dataset": "arc-agi-1/evaluation"}))
    (tmp_path / "problems" / "aaa.json").write_text(json.dumps({"task_id": "aaa", "status": "done", "attempts": [{"attempt_1": [[1]], "attempt_2": None}]}))
    (tmp_path / "problems" / "bbb.json").write_text(json.dumps({"task_id": "bbb", "status": "failed: out of memory"}))
    pset = load_predictions(tmp_path)
    assert pset.kind == "run" and pset.dataset == "arc-agi-1/evaluation"
    assert set(pset.tasks) == {"aaa"} and set(pset.records) == {"aaa", "bbb"}


def test_writers_round_trip(tmp_path):
    sub = tmp_path / "submission.json"
    sub.write_text(json.dumps({"aaa": [{"attempt_1": [[1]], "attempt_2": [[1, 10]]}]}))
    export = build_export(load_predictions(sub))
    write_kaggle(export, tmp_path / "k.json")
    write_arc_agi_benchmarking(export, tmp_path / "folder")
    expected = [{"attempt_1": [[1]], "attempt_2": [[0]]}]  # the invalid grid is written as the placeholder
    assert json.loads((tmp_path / "k.json").read_text()) == {"aaa": expected}
    assert json.loads((tmp_path / "folder" / "aaa.json").read_text()) == expected
    assert export.placeholders == 1 and "1 placeholder grid [[0]] written" in export.warning()


def _answers(tmp_path, tests: dict[str, int]) -> TaskSet:
    """A dataset folder: task id -> number of test pairs."""
    folder = tmp_path / "data"
    folder.mkdir()
    pair = {"input": [[1]], "output": [[2]]}
    for task_id, n in tests.items():
        (folder / f"{task_id}.json").write_text(json.dumps({"train": [pair], "test": [pair] * n}))
    return load_tasks(folder)


def test_export_has_two_attempts_for_every_test_output_of_every_task(tmp_path):
    tasks = _answers(tmp_path, {"aaa": 2, "bbb": 1, "ccc": 1})
    sub = tmp_path / "submission.json"  # three attempts, a null, one entry short, a task left out, one not in the dataset
    sub.write_text(json.dumps({"aaa": [{"attempt_1": [[1]], "attempt_2": None, "attempt_3": [[2]]}],
                               "bbb": [{"attempt_1": [[3]], "attempt_2": [[2]], "attempt_3": [[4]]}], "zzz": [{"attempt_1": [[1]]}]}))
    export = build_export(load_predictions(sub), tasks)
    assert export.entries == {
        "aaa": [{"attempt_1": [[1]], "attempt_2": [[0]]}, {"attempt_1": [[0]], "attempt_2": [[0]]}],
        "bbb": [{"attempt_1": [[3]], "attempt_2": [[2]]}],
        "ccc": [{"attempt_1": [[0]], "attempt_2": [[0]]}],
    }
    assert export.placeholders == 5 and export.empty == ["ccc"]
    assert export.warning() == ("5 placeholder grids [[0]] written where the set has no attempt: 2 for 1 task without "
                                "attempts (ccc); 3 for missing or invalid attempts")
    assert export.notes == [f"task 'zzz': not in {tasks.name}, not exported"]


def test_a_bad_id_is_skipped_with_one_line_and_the_rest_written(tmp_path):
    sub = tmp_path / "submission.json"
    entry = [{"attempt_1": [[1]], "attempt_2": [[2]]}]
    sub.write_text(json.dumps({"../evil": entry, "CON": entry, "ok": entry, "OK": entry, "a b": entry}))
    export = build_export(load_predictions(sub))
    written = write_arc_agi_benchmarking(export, tmp_path / "out" / "folder")
    assert sorted(p.name for p in written) == sorted(p.name for p in (tmp_path / "out" / "folder").iterdir()) == ["OK.json", "a b.json"]
    assert not (tmp_path / "evil.json").exists() and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["folder"]
    assert len(export.notes) == 3 and all("\n" not in n and n.endswith("not exported") for n in export.notes)
    assert "'../evil' cannot be used as a file name" in export.notes[0] and "device name on Windows" in export.notes[1]
    assert "'ok' and 'OK' would share the file ok.json on a case-insensitive filesystem" in export.notes[2]
    write_kaggle(export, tmp_path / "k.json")  # a JSON key is no file name: Kaggle keeps every id
    assert sorted(json.loads((tmp_path / "k.json").read_text())) == sorted(["../evil", "CON", "ok", "OK", "a b"])
