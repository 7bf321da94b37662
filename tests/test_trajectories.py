"""Transition videos: `python -m pytest tests/test_trajectories.py -q`."""

import numpy as np
import pytest

from arcvdm.errors import ArcvdmError, UnknownNameError
from arcvdm.trajectories import TRAJECTORIES, make_video, target_frame_indices

rng = np.random.default_rng(0)
FIRST = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
LAST = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["linear", "quadratic", "square-root", "discrete", "tiles"])
@pytest.mark.parametrize("frames", [9, 17])
def test_endpoints_are_exact(name, frames):
    video = make_video(FIRST, LAST, frames, name)
    assert video.shape == (frames, 32, 48, 3) and video.dtype == np.uint8
    assert np.array_equal(video[0], FIRST) and np.array_equal(video[-1], LAST)


def test_registry_names_and_did_you_mean():
    assert TRAJECTORIES.names() == ["linear", "quadratic", "square-root", "discrete", "tiles"]
    with pytest.raises(UnknownNameError, match="Did you mean 'tiles'"):
        make_video(FIRST, LAST, 9, "tile")


@pytest.mark.parametrize("frames", [1, 0, -3])
def test_a_video_needs_a_first_and_a_last_frame(frames):
    with pytest.raises(ArcvdmError, match="at least 2 frames"):
        make_video(FIRST, LAST, frames)


def test_discrete_switches_at_half():
    video = make_video(FIRST, LAST, 9, "discrete")
    assert all(np.array_equal(video[i], FIRST) for i in range(4))
    assert all(np.array_equal(video[i], LAST) for i in range(4, 9))


def test_blend_weights():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 240, np.uint8)
    t = np.linspace(0, 1, 9)
    for name, weight in [("linear", t), ("quadratic", t**2), ("square-root", np.sqrt(t))]:
        video = make_video(black, white, 9, name)
        assert np.allclose(video[:, 0, 0, 0], 240 * weight, atol=0.51)


def test_tiles_reveal_floor_k_over_f_minus_1_times_16_tiles_in_a_seeded_order():
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    video = make_video(black, white, 9, "tiles", seed=3)
    revealed = [(video[k, ::16, ::16, 0] == 255).sum() for k in range(9)]
    assert revealed == [k * 16 // 8 for k in range(9)]
    same = make_video(black, white, 9, "tiles", seed=3)
    other = make_video(black, white, 9, "tiles", seed=4)
    assert np.array_equal(video, same) and not np.array_equal(video, other)
    # Tiles only ever get added.
    assert all(((video[k + 1] >= video[k]).all()) for k in range(8))


@pytest.mark.parametrize("name", ["linear", "quadratic", "square-root", "discrete", "tiles"])
@pytest.mark.parametrize("frames", [9, 17])
def test_target_frames_are_the_frames_drawn_as_the_target(name, frames):
    video = make_video(FIRST, LAST, frames, name, seed=5)
    drawn = tuple(i for i in range(frames) if np.array_equal(video[i], LAST))
    assert target_frame_indices(name, frames) == drawn
    assert drawn == (tuple(range(frames // 2, frames)) if name == "discrete" else (frames - 1,))
