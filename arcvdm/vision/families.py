"""The vision task families: how an (input, target) picture pair is made from a sample, and how generated last frames
are decoded and measured. `FAMILIES.get(name)` -> Family."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from arcvdm.errors import ArcvdmError
from arcvdm.registry import Registry
from arcvdm.vision import metrics as M
from arcvdm.vision.drawing import (
    CATEGORY_COLORS,
    NUM_SYMBOLS,
    color_labels,
    grid_cells,
    nearest_color_labels,
    render_pose,
    render_symbol_grid,
    symbol_tile,
)
from arcvdm.vision.items import Sample, resize_rgb, resize_sample

GRID_ROWS = GRID_COLS = 4


@dataclass(frozen=True)
class Example:
    """One sample turned into a task example at the family's resolution."""

    input: np.ndarray
    target: np.ndarray
    sample: Sample
    annotation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    pair: Callable[[Sample, int, int], Example] | None  # None: the data must bring targets (pairs)
    evaluate: Callable[[list[np.ndarray], list[Example]], dict[str, Any]]
    synthetic: str  # synthetic.KINDS entry that feeds it
    needs: str  # the Sample annotation it builds targets from ("image" = nothing beyond the picture)
    size: tuple[int, int, int]  # frames, height, width (paper's where it gives one)
    schedule: str  # "dense" (segmentation/pose), "grid" (TinyImageNet) or "standard": see presets.py
    primary: str  # the headline metric (higher is better for all of them)
    tiles: int = 1  # samples per task item: grid classification tiles 16 classification pictures

    def make_example(self, sample: Sample, height: int, width: int) -> Example:
        sample = resize_sample(sample, height, width)
        if sample.target is not None:  # a pair folder (or paired synthetic data) defines the task itself
            return Example(sample.image, sample.target, sample)
        if self.needs != "image" and getattr(sample, self.needs) is None:
            raise ArcvdmError(
                f"family {self.name} needs {NEEDS[self.needs]}; item {sample.id} has none: "
                "use --data synthetic or such a source (see `arcvdm vision list`)"
            )
        return self.pair(sample, height, width)


FAMILIES: Registry[Family] = Registry("vision family")
NEEDS = {
    "image": "pictures",
    "mask": "category masks (COCO instances JSON)",
    "labels": "category masks (COCO instances JSON)",
    "keypoints": "person keypoints (COCO person_keypoints JSON)",
    "cell_labels": "class labels (TinyImageNet)",
    "target": "paired targets (a folder with input/ and target/)",
}


def _rng_for(sample: Sample) -> np.random.Generator:
    """Per-item randomness (inpainting holes, jigsaw order) that depends only on the item, not on the run."""
    return np.random.default_rng(zlib.crc32(sample.id.encode()))


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _white_mask(mask: np.ndarray) -> np.ndarray:
    return np.repeat(np.where(mask, 255, 0).astype(np.uint8)[..., None], 3, axis=2)


# ---- evaluations -----------------------------------------------------------------------------

def _eval_binary(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    cm = sum(M.confusion_matrix(_grey(p) > 127, _grey(e.target) > 127, 2) for p, e in zip(preds, examples))
    ious = M.iou_per_class(cm)
    return {"miou": M.mean_iou(cm), "iou": float(ious[1]), "background_iou": float(ious[0])}


def _eval_category_mask(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    k = len(CATEGORY_COLORS)
    cm = sum(M.confusion_matrix(nearest_color_labels(p), nearest_color_labels(e.target), k) for p, e in zip(preds, examples))
    return {"miou": M.mean_iou(cm), "pixel_accuracy": float(np.trace(cm) / cm.sum())}


def _eval_pose(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    matched = total = 0
    for p, e in zip(preds, examples):
        annotated = e.annotation.get("centroids") or M.part_centroids(M.segment_parts(e.target))
        threshold = e.annotation.get("threshold", M.NO_HEAD_THRESHOLD_PX)
        m, t = M.match_parts(M.part_centroids(M.segment_parts(p)), annotated, threshold)
        matched, total = matched + m, total + t
    return {"match_rate": matched / total if total else float("nan"), "matched_parts": matched, "annotated_parts": total}


def _decode_grid(frame: np.ndarray) -> np.ndarray:
    cells = grid_cells(frame, GRID_ROWS, GRID_COLS)
    h, w = cells.shape[1:3]
    symbols = np.stack([symbol_tile(k, h, w) for k in range(NUM_SYMBOLS)])
    return M.nearest_symbol(cells, symbols).reshape(GRID_ROWS, GRID_COLS)


def _eval_grid(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    truth = [e.sample.cell_labels if e.sample.cell_labels is not None else _decode_grid(e.target) for e in examples]
    cm = sum(M.confusion_matrix(_decode_grid(p), t, NUM_SYMBOLS) for p, t in zip(preds, truth))
    return {"accuracy": float(np.trace(cm) / cm.sum()), "confusion_matrix": cm.tolist()}


def _eval_picture(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    return {
        "psnr": float(np.mean([M.psnr(p, e.target) for p, e in zip(preds, examples)])),
        "ssim": float(np.mean([M.ssim(p, e.target) for p, e in zip(preds, examples)])),
    }


def _eval_exact(preds: list[np.ndarray], examples: list[Example]) -> dict[str, Any]:
    return {
        "exact": float(np.mean([M.is_exact(p, e.target) for p, e in zip(preds, examples)])),
        "pixel_accuracy": float(np.mean([M.pixel_accuracy(p, e.target) for p, e in zip(preds, examples)])),
        **_eval_picture(preds, examples),
    }


# ---- pair builders ----------------------------------------------------------------------------

def _pair_segmentation(s: Sample, h: int, w: int) -> Example:
    return Example(s.image, _white_mask(s.mask), s)


def _pair_image_to_mask(s: Sample, h: int, w: int) -> Example:
    return Example(s.image, color_labels(s.labels), s)


def _pair_mask_to_image(s: Sample, h: int, w: int) -> Example:
    return Example(color_labels(s.labels), s.image, s)


def _pair_pose(s: Sample, h: int, w: int) -> Example:
    target, centroids = render_pose(s.keypoints, h, w)
    return Example(s.image, target, s, {"centroids": centroids, "threshold": M.match_threshold(s.keypoints)})


def _pair_grid(s: Sample, h: int, w: int) -> Example:
    return Example(s.image, render_symbol_grid(s.cell_labels, h, w), s)


def _transformed(fn: Callable[[np.ndarray, Sample], np.ndarray]) -> Callable[[Sample, int, int], Example]:
    return lambda s, h, w: Example(s.image, fn(s.image, s), s)


def _degraded(fn: Callable[[np.ndarray, Sample], np.ndarray]) -> Callable[[Sample, int, int], Example]:
    """Input is a degraded picture, target the original."""
    return lambda s, h, w: Example(fn(s.image, s), s.image, s)


def _zoom(image: np.ndarray, s: Sample) -> np.ndarray:
    h, w = image.shape[:2]
    return resize_rgb(np.ascontiguousarray(image[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]), h, w)


def _rotate90(image: np.ndarray, s: Sample) -> np.ndarray:
    if image.shape[0] != image.shape[1]:
        raise ArcvdmError(f"rotate-90 needs a square picture, got {image.shape[0]}x{image.shape[1]}: pass --height = --width")
    return np.ascontiguousarray(np.rot90(image))


def _rotate45(image: np.ndarray, s: Sample) -> np.ndarray:
    return ndimage.rotate(image, 45, axes=(1, 0), reshape=False, order=1, mode="constant", cval=0)


def _shear(image: np.ndarray, s: Sample, factor: float = 0.3) -> np.ndarray:
    h, w = image.shape[:2]
    # output (y, x) samples input (y, x + factor * (y - h/2)): a horizontal shear about the centre row
    matrix = np.array([[1, 0, 0], [factor, 1, 0], [0, 0, 1]])
    offset = np.array([0, -factor * h / 2, 0])
    return ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="constant", cval=0)


def _to_grey(image: np.ndarray, s: Sample) -> np.ndarray:
    return np.repeat(_grey(image).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _holes(image: np.ndarray, s: Sample, count: int = 3) -> np.ndarray:
    rng, out = _rng_for(s), image.copy()
    h, w = image.shape[:2]
    side = max(2, min(h, w) // 6)
    for _ in range(count):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out[y : y + side, x : x + side] = 128
    return out


def _shuffle_patches(image: np.ndarray, s: Sample, n: int = 3) -> np.ndarray:
    h, w = image.shape[:2]
    ph, pw = h // n, w // n
    tiles = [image[r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] for r in range(n) for c in range(n)]
    order = _rng_for(s).permutation(n * n)
    if (order == np.arange(n * n)).all():
        order = np.roll(order, 1)
    out = image.copy()
    for k, src in enumerate(order):
        r, c = divmod(k, n)
        out[r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] = tiles[src]
    return out


def _edges(image: np.ndarray, s: Sample) -> np.ndarray:
    grey = ndimage.gaussian_filter(_grey(image), 1.0)
    magnitude = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
    return _white_mask(magnitude > max(40.0, np.percentile(magnitude, 85)))


DENSE, GRID, STANDARD = (9, 480, 720), (9, 256, 256), (9, 480, 480)

for family in (
    Family("binary-segmentation", "picture -> white mask of one category on black (COCO: --category dog)",
           _pair_segmentation, _eval_binary, "shapes", "mask", DENSE, "dense", "miou"),
    Family("pose", "picture -> body parts on black: head white, torso blue, arms red, legs green",
           _pair_pose, _eval_pose, "figures", "keypoints", DENSE, "dense", "match_rate"),
    Family("grid-classification", "4x4 grid of class pictures -> 4x4 grid of class symbols (shape + colour)",
           _pair_grid, _eval_grid, "classes", "cell_labels", GRID, "grid", "accuracy", tiles=GRID_ROWS * GRID_COLS),
    Family("zoom", "picture -> its centre half enlarged 2x", _transformed(_zoom), _eval_exact, "shapes", "image", STANDARD, "standard", "exact"),
    Family("flip-vertical", "picture -> upside down", _transformed(lambda a, s: np.ascontiguousarray(a[::-1])), _eval_exact,
           "shapes", "image", STANDARD, "standard", "exact"),
    Family("flip-horizontal", "picture -> mirrored left-right", _transformed(lambda a, s: np.ascontiguousarray(a[:, ::-1])),
           _eval_exact, "shapes", "image", STANDARD, "standard", "exact"),
    Family("rotate-90", "picture -> rotated 90 degrees counter-clockwise", _transformed(_rotate90), _eval_exact,
           "shapes", "image", STANDARD, "standard", "exact"),
    Family("rotate-45", "picture -> rotated 45 degrees counter-clockwise, corners black", _transformed(_rotate45), _eval_exact,
           "shapes", "image", STANDARD, "standard", "exact"),
    Family("shear", "picture -> sheared horizontally by 0.3 about the centre", _transformed(_shear), _eval_exact,
           "shapes", "image", STANDARD, "standard", "exact"),
    Family("colorization", "grey picture -> colour picture", _degraded(_to_grey), _eval_picture, "shapes", "image", STANDARD, "standard", "psnr"),
    Family("inpainting", "picture with 3 grey squares -> whole picture", _degraded(_holes), _eval_picture, "shapes", "image", STANDARD, "standard", "psnr"),
    Family("jigsaw", "picture cut in 3x3 shuffled patches -> picture", _degraded(_shuffle_patches), _eval_exact,
           "shapes", "image", STANDARD, "standard", "exact"),
    Family("edges", "picture -> white Sobel edges on black", _transformed(_edges), _eval_picture, "shapes", "image", STANDARD, "standard", "psnr"),
    Family("depth", "picture -> grey-scale depth (near = bright); needs pairs", None, _eval_picture,
           "depth", "target", STANDARD, "standard", "psnr"),
    Family("style-transfer", "picture -> the same picture in the paired style; needs pairs", None,
           _eval_picture, "style", "target", STANDARD, "standard", "psnr"),
    Family("mask-to-image", "category mask (colours) -> picture", _pair_mask_to_image, _eval_picture, "shapes", "labels", STANDARD, "standard", "psnr"),
    Family("image-to-mask", "picture -> category mask, one colour per category", _pair_image_to_mask, _eval_category_mask,
           "shapes", "labels", STANDARD, "standard", "miou"),
):
    FAMILIES.add(family.name, family)


# What the runner's stepS-evalJ.png pictures show, left to right (the report labels them with these names).
IMAGE_PANELS = ("input", "target", "prediction")


def side_by_side(*pictures: np.ndarray, gap: int = 4) -> np.ndarray:
    """Pictures in a row on a white strip, for the input / target / prediction PNGs."""
    h = max(p.shape[0] for p in pictures)
    out = np.full((h, sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1), 3), 255, dtype=np.uint8)
    x = 0
    for p in pictures:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out

