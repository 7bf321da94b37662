"""Run configs: presets, overrides and one-line errors: python -m pytest tests/test_config.py -q"""

import pytest

from arcvdm.backbones import check_config
from arcvdm.config import PRESETS, load_config
from arcvdm.errors import ArcvdmError


def test_every_preset_loads_fits_its_backbone_and_overrides_apply():
    for name in PRESETS.names():
        assert check_config(load_config(name)).preset == name
    assert load_config("smoke", {"train.steps": 7, "sample.seed": None}).train.steps == 7


def test_mini_aug_is_the_mini_preset_plus_the_beyond_paper_methods():
    mini, aug = load_config("mini"), load_config("mini-aug")
    assert aug.sample.readout == "target-frames" and mini.sample.readout == "last" == load_config("arcvdm-aug").sample.readout
    assert aug.sample.model_copy(update={"readout": "last"}) == mini.sample  # DDIM, 10 steps kept
    assert (aug.augment.views, aug.selection.rule, aug.train, aug.lora) == (8, "leave-one-out", mini.train, mini.lora)


@pytest.mark.parametrize("key", ["augment.views", "train.eval_every", "selection.attempts", "sample.batch_size"])
def test_counts_below_one_fail_at_load_not_inside_every_problem(key):
    with pytest.raises(ArcvdmError, match=f"{key}: Input should be greater than or equal to 1"):
        load_config("smoke", {key: 0})


@pytest.mark.parametrize(("text", "message"), [("train: [1,\n", "not valid YAML"), ("- 1\n", "top level must be a mapping"),
                                               ("[" * 100_000 + "]" * 100_000, "nested too deeply")])
def test_a_broken_config_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ArcvdmError, match=message) as info:
        load_config(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
