"""Prediction readers and writers: `python -m pytest tests/test_formats.py -q`."""

import json

import pytest

from arcvdm.errors import ArcvdmError
from arcvdm.formats import load_predictions, parse_task_entries, write_arc_agi_benchmarking, write_kaggle
from arcvdm.tasks import Grid


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
    pset = load_predictions(sub)
    write_kaggle(pset, tmp_path / "k.json")
    write_arc_agi_benchmarking(pset, tmp_path / "folder")
    expected = [{"attempt_1": [[1]], "attempt_2": None}]  # the invalid grid is written as null
    assert json.loads((tmp_path / "k.json").read_text()) == {"aaa": expected}
    assert json.loads((tmp_path / "folder" / "aaa.json").read_text()) == expected
