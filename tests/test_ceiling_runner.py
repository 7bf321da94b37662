"""What the ceiling runner (runners/mini_ceiling.py) records of its predictions, without a model:
`python -m pytest tests/test_ceiling_runner.py -q`."""

import importlib.util
from pathlib import Path

import numpy as np

from arcvdm.report.images import cell_size
from arcvdm.tasks import Grid, Pair

spec = importlib.util.spec_from_file_location("mini_ceiling", Path(__file__).resolve().parents[1] / "runners" / "mini_ceiling.py")
mini_ceiling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mini_ceiling)

PAIRS = [Pair(input=Grid([[9, 0], [0, 0]]), output=Grid([[9, 0], [0, 7]])),  # keeps 3 cells, changes 1
         Pair(input=Grid([[1, 1]]), output=Grid([[1], [1]]))]                # changes the shape


def test_outcome_splits_kept_from_changed_cells_and_counts_the_wrong_colours():
    drawn = [Grid([[2, 0], [0, 0]]), Grid([[1], [1]])]  # maroon drawn red, the rule's cell left black; 2nd exact
    result = mini_ceiling.outcome(drawn, PAIRS)
    assert (result["exact"], result["of"], result["cells"]) == (1, 2, 0.75)
    assert result["kept"] == [2, 3] and result["changed"] == [0, 1]  # the reshaping pair has no cell-to-cell view
    assert result["confused"] == {"9>2": 1, "7>0": 1}
    assert mini_ceiling.split_words(result) == ", kept 67%, changed 0%"
    assert mini_ceiling.split_words({"exact": 0}) == ""  # an entry written before the split


def test_outcome_without_a_same_shape_pair_has_no_split_and_a_failed_decode_counts_wrong():
    result = mini_ceiling.outcome([None], PAIRS[1:])
    assert "kept" not in result and result["confused"] == {} and result["exact"] == 0


def test_the_sheet_shows_each_pair_in_a_row_of_four_pictures():
    drawn = [Grid([[2, 0], [0, 0]]), None]  # the second prediction failed to decode: its row has two pictures
    picture = mini_ceiling.sheet(drawn, PAIRS)
    side = 2 * cell_size((2, 2)) + 1
    assert picture.shape[1] == 4 * side + 3 * 8 and picture.dtype == np.uint8
    assert (picture[:side, 3 * (side + 8):] == [255, 65, 54]).all(axis=-1).any()  # the missed cells in red
    second_row = picture[side + 8:]
    assert second_row.shape[0] == 2 * cell_size((2, 1)) + 1 and (second_row[:, 2 * (side + 8):] == 255).all()
