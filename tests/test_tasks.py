"""Task model and loaders: `python -m pytest tests/test_tasks.py -q`."""

import json

import numpy as np
import pytest

from arcvdm.errors import TaskFormatError
from arcvdm.tasks import Grid, Task, load_task, load_tasks

GOOD = {"train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]}], "test": [{"input": [[2]], "output": [[3]]}]}


def with_train_input(grid):
    return {"train": [{"input": grid, "output": [[0]]}], "test": [{"input": [[0]]}]}


@pytest.mark.parametrize(
    "data, message",
    [
        (with_train_input([]), "non-empty list of rows"),
        (with_train_input([[1] * 3] * 31), "31 rows, at most 30"),
        (with_train_input([[1] * 31]), "row 0: 31 columns, at most 30"),
        (with_train_input([[1, 2], [3]]), "row 1: 1 cells but row 0 has 2"),
        (with_train_input([[1, 2], []]), "row 1: a row must be a non-empty list"),
        (with_train_input([[1, 10]]), "row 0 col 1: value 10 is not an integer 0-9"),
        (with_train_input([[1, -1]]), "value -1"),
        (with_train_input([[1, 2.5]]), "value 2.5"),
        (with_train_input([[True]]), "value True"),
        ({"train": [], "test": [{"input": [[0]]}]}, "'train' must be a non-empty list"),
        ({"train": [{"input": [[0]], "output": [[0]]}]}, "'test' must be a non-empty list"),
        ({"train": [{"input": [[0]]}], "test": [{"input": [[0]]}]}, "train[0] has no 'output' grid"),
        ({"train": [{"output": [[0]]}], "test": [{"input": [[0]]}]}, "train[0] must be an object with an 'input'"),
        ({"train": [{"input": [[0]], "output": None}], "test": [{"input": [[0]]}]}, "train[0] has no 'output' grid"),
        ({"train": [{"input": [[0]], "output": [[0]]}], "test": [{"input": None}]}, "test[0] must be an object with an 'input'"),
        ([1, 2], "top level must be an object"),
    ],
)
def test_each_rule_gives_a_one_line_error_naming_file_task_and_pair(tmp_path, data, message):
    path = tmp_path / "bad-task.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text and "task bad-task" in text
    assert "\n" not in text


def test_error_names_split_index_and_row(tmp_path):
    data = {"train": [{"input": [[0]], "output": [[0]]}], "test": [{"input": [[0]]}, {"input": [[1, 1], [1, 1, 1]]}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TaskFormatError, match=r"test\[1\]\.input row 1"):
        load_task(path)


def test_not_json_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(TaskFormatError, match="not valid JSON"):
        load_task(path)


def test_folder_keeps_good_files_and_reports_each_bad_one(tmp_path, samples_dir):
    for sample in samples_dir.glob("*.json"):
        (tmp_path / sample.name).write_text(sample.read_text())
    (tmp_path / "zz-broken.json").write_text("[")
    (tmp_path / "aa-ragged.json").write_text(json.dumps(with_train_input([[1, 2], [3]])))
    tasks = load_tasks(tmp_path)
    assert len(tasks) == len(list(samples_dir.glob("*.json")))
    assert len(tasks.errors) == 2
    assert any("zz-broken" in str(e) for e in tasks.errors) and any("aa-ragged" in str(e) for e in tasks.errors)
    assert "2 malformed" in repr(tasks)


def test_samples_are_small_original_tasks(samples_dir):
    tasks = load_tasks(samples_dir)
    assert 4 <= len(tasks) <= 6 and not tasks.errors
    assert any(len(t.test) == 2 for t in tasks)
    for task in tasks:
        assert 2 <= len(task.train) <= 3
        assert all(p.output is not None for p in task.test)
        assert all(max(g.shape) <= 6 for p in task.train + task.test for g in (p.input, p.output))


def test_to_dict_round_trips_the_published_layout(samples_dir):
    for path in samples_dir.glob("*.json"):
        task = load_task(path)
        assert task.to_dict() == json.loads(path.read_text())
        again = Task.from_dict(task.to_dict(), task.id)
        assert again.train == task.train and again.test == task.test


def test_grid_array_is_read_only_and_hashable():
    grid = Grid.from_array(np.array([[1, 2], [3, 4]]))
    assert grid.shape == (2, 2) and grid.array.dtype == np.uint8
    with pytest.raises(ValueError):
        grid.array[0, 0] = 5
    assert len({grid, Grid([[1, 2], [3, 4]])}) == 1


def test_visible_grids_never_include_test_outputs(samples_dir):
    task = load_task(samples_dir / "recolour.json")
    assert len(task.visible_grids()) == 2 * len(task.train) + len(task.test)
    test_outputs = [p.output for p in task.test]
    assert all(v is not o for v in task.visible_grids() for o in test_outputs)


def test_task_set_indexes_by_position_and_id(samples_dir):
    tasks = load_tasks(samples_dir)
    assert tasks["flip-h"].id == "flip-h" and tasks[0].id == tasks.ids()[0]
    with pytest.raises(TaskFormatError, match="no task with id"):
        tasks["nope"]
