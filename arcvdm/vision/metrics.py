"""Vision metrics on decoded predictions: mIoU, pose Match Rate (paper appendix B.1), grid accuracy, PSNR/SSIM
(scikit-image's, so figures compare with other papers'), exactness."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

# Pose targets paint each body part one pure colour on black (paper, appendix B.1).
POSE_COLORS = {
    "head": (255, 255, 255),
    "torso": (0, 0, 255),
    "arm": (255, 0, 0),
    "leg": (0, 255, 0),
}
POSE_PARTS = tuple(POSE_COLORS)
NO_HEAD_THRESHOLD_PX = 20.0
HEAD_SCALE_FACTOR = 1.5
PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; JSON needs a finite number


# ---- segmentation -----------------------------------------------------------------------------

def confusion_matrix(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class] over all pixels (or cells)."""
    pred = np.asarray(pred, dtype=np.int64).ravel()
    true = np.asarray(true, dtype=np.int64).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"prediction has {pred.size} entries, truth {true.size}")
    return np.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix; NaN for a class absent from both truth and prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    ious = iou_per_class(cm)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


# ---- pose Match Rate --------------------------------------------------------------------------

PART_COLOR_RADIUS = 127.5  # half the RGB distance from black to a pure primary: mid-grey counts as no part


def segment_parts(frame: np.ndarray) -> np.ndarray:
    """Label each pixel 0 (background) or 1 + index into POSE_PARTS: the nearest pure colour, if within
    PART_COLOR_RADIUS of it (otherwise grey noise, equidistant from all five colours, would scatter parts)."""
    palette = np.array([(0, 0, 0), *POSE_COLORS.values()], dtype=np.float32)
    d = ((frame.astype(np.float32)[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    labels = d.argmin(-1)
    labels[d.min(-1) > PART_COLOR_RADIUS**2] = 0
    return labels


def part_centroids(parts: np.ndarray) -> dict[str, np.ndarray]:
    """Centroid (x, y) of every connected component of each part colour."""
    out = {}
    for index, name in enumerate(POSE_PARTS, start=1):
        components, count = ndimage.label(parts == index)
        if count == 0:
            out[name] = np.zeros((0, 2))
            continue
        centres = ndimage.center_of_mass(np.ones_like(components), components, range(1, count + 1))
        out[name] = np.array([(x, y) for y, x in centres], dtype=np.float64)
    return out


def head_scale(keypoints: np.ndarray | None) -> float | None:
    """Average distance between the visible head keypoints (COCO 0-4: nose, eyes, ears) of each person, averaged
    over people; None when no person has two visible head keypoints.

    The paper's "average inter-head distance" is read as this per-head scale (PCKh-like); see docs/decisions.md.
    """
    if keypoints is None or len(keypoints) == 0:
        return None
    scales = []
    for person in np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3):
        head = person[:5][person[:5, 2] > 0, :2]
        if len(head) >= 2:
            diffs = head[:, None] - head[None]
            dists = np.sqrt((diffs**2).sum(-1))[np.triu_indices(len(head), 1)]
            scales.append(dists.mean())
    return float(np.mean(scales)) if scales else None


def match_threshold(keypoints: np.ndarray | None) -> float:
    scale = head_scale(keypoints)
    return HEAD_SCALE_FACTOR * scale if scale else NO_HEAD_THRESHOLD_PX


def match_parts(
    predicted: dict[str, np.ndarray], annotated: dict[str, np.ndarray], threshold: float
) -> tuple[int, int]:
    """(matched, annotated) part counts: per colour, optimal assignment of predicted to annotated centroids,
    a pair counting when closer than `threshold` pixels."""
    matched = total = 0
    for name in POSE_PARTS:
        truth = annotated.get(name, np.zeros((0, 2)))
        guess = predicted.get(name, np.zeros((0, 2)))
        total += len(truth)
        if len(truth) == 0 or len(guess) == 0:
            continue
        dist = np.sqrt(((truth[:, None] - guess[None]) ** 2).sum(-1))
        rows, cols = linear_sum_assignment(dist)
        matched += int((dist[rows, cols] < threshold).sum())
    return matched, total


# ---- grid classification ----------------------------------------------------------------------

def nearest_symbol(cells: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Index of the L2-nearest symbol for each cell: cells [N,h,w,3], symbols [K,h,w,3] -> [N]."""
    c = cells.reshape(len(cells), -1).astype(np.float32)
    s = symbols.reshape(len(symbols), -1).astype(np.float32)
    d = (c**2).sum(1)[:, None] - 2 * c @ s.T + (s**2).sum(1)[None]
    return d.argmin(1)


# ---- image similarity -------------------------------------------------------------------------

def psnr(pred: np.ndarray, target: np.ndarray, cap: float = PSNR_CAP_DB) -> float:
    """scikit-image's PSNR over 0-255 pixels, capped at `cap` dB (identical images would give infinity)."""
    if np.array_equal(pred, target):
        return cap
    value = peak_signal_noise_ratio(target.astype(np.float64), pred.astype(np.float64), data_range=255)
    return float(min(cap, value))


def ssim(pred: np.ndarray, target: np.ndarray, sigma: float = 1.5) -> float:
    """scikit-image's mean SSIM as in Wang et al. 2004 (Gaussian window σ=1.5, population covariance,
    data range 255), over the channels of a colour image: the figure other papers report."""
    a = pred.astype(np.float64).reshape(pred.shape[0], pred.shape[1], -1)
    b = target.astype(np.float64).reshape(a.shape)
    return float(structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True, sigma=sigma,
                                       use_sample_covariance=False))


EXACT_TOLERANCE = 24  # per-channel error still counted as the right pixel (VAE round trips are never bit-exact)
EXACT_FRACTION = 0.95


def pixel_accuracy(pred: np.ndarray, target: np.ndarray, tolerance: int = EXACT_TOLERANCE) -> float:
    """Fraction of pixels whose every channel is within `tolerance` of the target."""
    err = np.abs(pred.astype(np.int16) - target.astype(np.int16))
    return float((err.reshape(err.shape[0], err.shape[1], -1).max(-1) <= tolerance).mean())


def is_exact(pred: np.ndarray, target: np.ndarray) -> bool:
    """A geometric transform counts as done when ≥95% of pixels are within tolerance (see docs/decisions.md)."""
    return pixel_accuracy(pred, target) >= EXACT_FRACTION
