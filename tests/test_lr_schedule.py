"""The LoRA's learning-rate schedule (`train.lr_schedule`, arcvdm/train.py `lr_factor`): `python -m pytest tests/test_lr_schedule.py -q`."""

import math

import numpy as np
import pytest
import torch
from diffusers.optimization import get_constant_schedule, get_cosine_schedule_with_warmup

from arcvdm.backbones import load_backbone
from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.train import LoraTrainer, lr_factor

SIZE = 32
SMALL = {"video.height": SIZE, "video.width": SIZE, "lora.rank": 4, "lora.alpha": 8, "train.lr": 1e-2}


def moving_square(seed: int, frames: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    video = np.zeros((frames, SIZE, SIZE, 3), np.uint8)
    for f in range(frames):
        x = f * (SIZE - 8) // (frames - 1)
        video[f, 8:16, x : x + 8] = rng.integers(64, 256, 3, dtype=np.uint8)
    return video


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tiny", device="cpu")


@pytest.fixture(scope="module")
def videos():
    return [moving_square(0), moving_square(1)]


def diffusers_factors(steps: int, warmup: int) -> list[float]:
    """diffusers' own cosine-with-warm-up factors for steps 0..steps, read off its scheduler."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup, steps)
    factors = []
    for _ in range(steps + 1):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return factors


@pytest.mark.parametrize("warmup", [0, 10])
def test_cosine_follows_diffusers_after_the_warm_up_and_reaches_zero_at_train_steps(warmup):
    train = load_config("smoke", {"train.steps": 200, "train.warmup_steps": warmup, "train.lr_schedule": "cosine"}).train
    ours = [lr_factor(step, train) for step in range(201)]
    assert ours[warmup:] == diffusers_factors(200, warmup)[warmup:]
    assert ours[warmup] == 1.0 and ours[200] == 0.0
    assert ours[warmup + (200 - warmup) // 2] == pytest.approx(0.5, abs=1e-12)  # half-way through the decay
    assert all(a > b for a, b in zip(ours[warmup:200], ours[warmup + 1 : 201]))
    assert lr_factor(260, train) == 0.0  # steps past train.steps do not climb back up the cosine
    # The warm-up is the constant schedule's: step 0 already trains at 1/warmup_steps of the rate.
    constant = train.model_copy(update={"lr_schedule": "constant"})
    assert ours[:warmup] == [lr_factor(step, constant) for step in range(warmup)] == [(s + 1) / 10 for s in range(warmup)]


def test_constant_is_the_default_and_unknown_schedules_are_refused():
    assert load_config("mini").train.lr_schedule == "constant"
    assert {lr_factor(step, load_config("mini").train) for step in range(0, 400, 7)} == {1.0}
    with pytest.raises(ArcvdmError, match="lr_schedule"):
        load_config("smoke", {"train.lr_schedule": "linear"})


def test_chunked_training_applies_the_rate_of_each_step(backbone, videos):
    """The runner trains in chunks up to each checkpoint (and stops early): every step's rate is the schedule's."""
    config = load_config("smoke", {**SMALL, "train.steps": 6, "train.warmup_steps": 2, "train.lr_schedule": "cosine"})
    trainer = LoraTrainer(backbone, videos, config)
    applied = [trainer.optimizer.param_groups[0]["lr"]]
    for chunk in (1, 3, 2):
        for _ in range(chunk):
            trainer.train(1, progress=False)
            applied.append(trainer.optimizer.param_groups[0]["lr"])
    assert trainer.step == 6
    assert applied == [1e-2 * lr_factor(step, config.train) for step in range(7)]
    assert applied[0] == 5e-3 and applied[1] == 1e-2 and applied[-1] == 0.0
    assert applied[4] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 2 / 4)))


def adapter_weights(backbone) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in backbone.transformer.named_parameters() if "lora_" in n}


@pytest.mark.parametrize("warmup", [0, 3])
def test_the_constant_schedule_trains_exactly_as_an_explicit_one(backbone, videos, warmup):
    """`constant` (the default) is bit-identical to an independent constant schedule: diffusers' own without warm-up,
    and with warm-up the rule arcvdm has always used, (step + 1) / warmup_steps up to 1."""
    config = load_config("smoke", {**SMALL, "train.warmup_steps": warmup})
    trainer = LoraTrainer(backbone, videos, config)
    losses, weights = trainer.train(5, progress=False), adapter_weights(backbone)

    reference = LoraTrainer(backbone, videos, config)
    optimizer = reference.optimizer
    reference.lr_schedule = (get_constant_schedule(optimizer) if not warmup else
                             torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup)))
    assert reference.train(5, progress=False) == losses
    expected = adapter_weights(backbone)
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[n], expected[n]) for n in weights)

    # The cosine schedule is a different training: same first step (both at the full rate), different later ones.
    if not warmup:
        cosine = LoraTrainer(backbone, videos, config.model_copy(
            update={"train": config.train.model_copy(update={"lr_schedule": "cosine", "steps": 5})}))
        cosine_losses = cosine.train(5, progress=False)
        assert cosine_losses[:2] == losses[:2] and cosine_losses[2:] != losses[2:]
