"""Forward-pass and FLOP accounting: python -m pytest tests/test_flops.py -q"""

import pytest

from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.flops import forward_passes, planned_forward_passes


def test_training_costs_three_forwards_per_video_and_sampling_one_per_step():
    spent = forward_passes(train_steps=600, batch_size=2, sampler_calls=6, sampling_steps=50)
    assert (spent.train, spent.sample, spent.total) == (3600, 300, 3900)
    assert spent.flops(1e12) == pytest.approx(3.9e15)
    assert spent.to_json(2.0) == {"train_forwards": 3600, "sample_forwards": 300, "total_forwards": 3900, "forward_flops": 7800.0}
    assert spent.to_json()["forward_flops"] is None


def test_classifier_free_guidance_doubles_sampling():
    assert forward_passes(0, 2, 6, 50, guidance_scale=6.0).sample == 600
    assert forward_passes(0, 2, 6, 50, guidance_scale=1.0).sample == 300


def test_rejects_negative_or_fractional_counts():
    with pytest.raises(ArcvdmError, match="sampler_calls = -1"):
        forward_passes(10, 2, -1, 50)
    with pytest.raises(ArcvdmError, match="train_steps"):
        forward_passes(1.5, 2, 1, 50)


def test_planned_budget_of_the_paper_preset_and_early_stopping():
    paper = load_config("paper-arc")
    # 1800 steps x batch 2 x 3; 6 checkpoints x (3 train + 1 test inputs) x 50 sampling steps
    full = planned_forward_passes(paper, n_train=3, n_test=1)
    assert (full.train, full.sample) == (10800, 1200)
    early = planned_forward_passes(paper, n_train=3, n_test=1, train_steps=600)
    assert (early.train, early.sample) == (3600, 400)
    voting = planned_forward_passes(load_config("paper-arc", {"augment.views": 8}), n_train=3, n_test=1)
    assert voting.sample == 6 * (3 + 8) * 50


def test_planned_budget_counts_the_final_checkpoint_off_the_eval_grid():
    # The solver also evaluates at train.steps when it is not a multiple of eval_every: 300, 600, 900, 1000.
    config = load_config("paper-arc", {"train.steps": 1000})
    assert planned_forward_passes(config, n_train=3, n_test=1).sample == 4 * 4 * 50
