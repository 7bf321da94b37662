"""Vision metrics on hand-built cases with known answers: python -m pytest tests/test_vision_metrics.py -q"""

import math

import numpy as np
import pytest

from arcvdm.vision import metrics as M
from arcvdm.vision.drawing import render_pose, render_symbol_grid
from arcvdm.vision.families import FAMILIES, Example, _decode_grid
from arcvdm.vision.items import Sample


def test_iou_on_tiny_masks():
    pred = np.array([[1, 1], [0, 0]])
    true = np.array([[1, 0], [0, 0]])
    cm = M.confusion_matrix(pred, true, 2)
    assert cm.tolist() == [[2, 1], [0, 1]]  # rows = truth, columns = prediction
    assert M.iou_per_class(cm).tolist() == pytest.approx([2 / 3, 1 / 2])
    assert M.mean_iou(cm) == pytest.approx(7 / 12)


def test_mean_iou_ignores_a_class_absent_from_truth_and_prediction():
    cm = M.confusion_matrix(np.array([0, 0, 2]), np.array([0, 0, 2]), 3)
    assert math.isnan(M.iou_per_class(cm)[1])
    assert M.mean_iou(cm) == 1.0


def test_binary_segmentation_family_reads_white_as_foreground():
    target = np.zeros((4, 4, 3), np.uint8)
    target[:2, :2] = 255  # 4 foreground pixels
    pred = np.zeros_like(target)
    pred[:2, :] = 230  # 8 predicted, 4 of them right
    ex = Example(np.zeros_like(target), target, Sample("t", target))
    out = FAMILIES.get("binary-segmentation").evaluate([pred], [ex])
    assert out["iou"] == pytest.approx(0.5)
    assert out["background_iou"] == pytest.approx(8 / 12)


def _figure(offset=(0, 0)):
    """Four blocks, one per part colour, with known centroids."""
    frame = np.zeros((100, 100, 3), np.uint8)
    blocks = {"head": (10, 40), "torso": (40, 40), "arm": (40, 10), "leg": (75, 40)}  # top-left (y, x), 10x10
    centroids = {}
    for name, (y, x) in blocks.items():
        y, x = y + offset[0], x + offset[1]
        frame[y : y + 10, x : x + 10] = M.POSE_COLORS[name]
        centroids[name] = np.array([[x + 4.5, y + 4.5]])
    return frame, centroids


def test_part_centroids_are_the_centres_of_the_coloured_components():
    frame, centroids = _figure()
    found = M.part_centroids(M.segment_parts(frame))
    for name in M.POSE_PARTS:
        assert found[name] == pytest.approx(centroids[name])


def test_match_rate_uses_20_px_when_no_head_is_annotated():
    assert M.match_threshold(None) == 20.0
    _, truth = _figure()
    near, _ = _figure(offset=(0, 19))
    far, _ = _figure(offset=(0, 21))
    assert M.match_parts(M.part_centroids(M.segment_parts(near)), truth, M.match_threshold(None)) == (4, 4)
    assert M.match_parts(M.part_centroids(M.segment_parts(far)), truth, M.match_threshold(None)) == (0, 4)


def test_match_threshold_is_1_5_times_the_head_keypoint_distance():
    person = np.zeros((17, 3))
    person[0] = (50, 50, 2)  # nose
    person[1] = (56, 58, 2)  # one eye, 10 px away; the rest invisible
    assert M.head_scale(person[None]) == pytest.approx(10.0)
    assert M.match_threshold(person[None]) == pytest.approx(15.0)
    only_nose = person.copy()
    only_nose[1, 2] = 0
    assert M.match_threshold(only_nose[None]) == 20.0


def test_noise_specks_do_not_steal_matches_and_missing_parts_count_as_misses():
    frame, truth = _figure()
    frame[95:97, 95:97] = M.POSE_COLORS["arm"]  # a stray red speck far away
    frame[80:85, 40:50] = 0  # part of the leg lost: still one component nearby
    assert M.match_parts(M.part_centroids(M.segment_parts(frame)), truth, 20.0) == (4, 4)
    frame[10:20, 40:50] = 0  # head gone
    assert M.match_parts(M.part_centroids(M.segment_parts(frame)), truth, 20.0) == (3, 4)


def test_pose_family_scores_its_own_target_1_and_black_0():
    person = np.zeros((17, 3))
    person[:, 2] = 2
    person[:5, :2] = [(50, 20), (47, 17), (53, 17), (44, 20), (56, 20)]
    person[5:, :2] = [(40, 30), (60, 30), (35, 45), (65, 45), (33, 58), (67, 58), (43, 60), (57, 60), (42, 75), (58, 75), (41, 90), (59, 90)]
    target, centroids = render_pose(person[None], 100, 100)
    assert {k: len(v) for k, v in centroids.items()} == {"head": 1, "torso": 1, "arm": 2, "leg": 2}
    family = FAMILIES.get("pose")
    ex = family.make_example(Sample("p", np.zeros((100, 100, 3), np.uint8), keypoints=person[None]), 100, 100)
    assert family.evaluate([ex.target], [ex])["match_rate"] == 1.0
    assert family.evaluate([np.zeros_like(ex.target)], [ex]) == {"match_rate": 0.0, "matched_parts": 0, "annotated_parts": 6}


def test_symbols_decode_under_noise():
    labels = np.arange(16).reshape(4, 4) % 7
    frame = render_symbol_grid(labels, 128, 128).astype(np.float32)
    noisy = np.clip(frame + np.random.default_rng(0).normal(0, 60, frame.shape), 0, 255).astype(np.uint8)
    assert (_decode_grid(noisy) == labels).all()
    family = FAMILIES.get("grid-classification")
    ex = Example(frame.astype(np.uint8), frame.astype(np.uint8), Sample("g", frame.astype(np.uint8), cell_labels=labels))
    wrong = render_symbol_grid((labels + 1) % 7, 128, 128)
    out = family.evaluate([noisy, wrong], [ex, ex])
    assert out["accuracy"] == 0.5
    cm = np.array(out["confusion_matrix"])
    assert cm.sum() == 32 and np.trace(cm) == 16 and cm[0, 1] == 3  # three 0-cells predicted as 1 in `wrong`


def test_psnr_identical_is_capped_and_known_error_gives_known_value():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert M.psnr(a, a) == M.PSNR_CAP_DB
    assert M.psnr(a + 1, a) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_ssim_is_one_for_identical_and_lower_for_noise():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert M.ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + np.random.default_rng(2).normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert 0 < M.ssim(noisy, img) < 0.9


def test_exactness_tolerates_small_error_but_not_a_wrong_transform():
    img = np.random.default_rng(3).integers(30, 220, (32, 32, 3), dtype=np.uint8)
    assert M.is_exact(img + 10, img)
    assert not M.is_exact(np.ascontiguousarray(img[::-1]), img)
    assert M.pixel_accuracy(img, img) == 1.0


def test_grey_noise_is_no_body_part():
    frame = np.full((20, 20, 3), 128, np.uint8)  # equidistant from black and the four part colours
    assert (M.segment_parts(frame) == 0).all()
    frame[5:10, 5:10] = (200, 40, 30)  # reddish: an arm
    assert len(M.part_centroids(M.segment_parts(frame))["arm"]) == 1


def test_psnr_and_ssim_are_scikit_images():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    for shape in [(64, 64, 3), (64, 64), (33, 47, 3)]:
        a = rng.integers(0, 256, shape).astype(np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
        expected = structural_similarity(a, b, data_range=255, channel_axis=2 if len(shape) == 3 else None,
                                         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert M.ssim(b, a) == pytest.approx(expected, abs=1e-12)
        assert M.psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert M.psnr(a, a) == M.PSNR_CAP_DB
