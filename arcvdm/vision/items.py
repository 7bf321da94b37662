"""A dataset item of the vision suite (image plus whatever annotation its source has) and resizing that keeps them aligned."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Sample:
    """One item from a dataset adapter or a synthetic generator; every annotation is optional.

    image: [H,W,3] uint8. mask: [H,W] bool (the chosen category). labels: [H,W] int (0 background,
    1..K categories). keypoints: [P,17,3] float (COCO x, y, visibility). label: class index.
    cell_labels: [r,c] class indices of a mosaic. target: [H,W,3] uint8 paired target picture.
    """

    id: str
    image: np.ndarray
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    label: int | None = None
    cell_labels: np.ndarray | None = None
    target: np.ndarray | None = None

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        has = [f for f in ("mask", "labels", "keypoints", "label", "cell_labels", "target") if getattr(self, f) is not None]
        return f"<Sample {self.id} | {h}x{w} | {', '.join(has) or 'image only'}>"


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return array
    rows = (np.arange(height) * array.shape[0] / height).astype(int)
    cols = (np.arange(width) * array.shape[1] / width).astype(int)
    return array[rows][:, cols]


def resize_sample(sample: Sample, height: int, width: int) -> Sample:
    """Stretch the image and every pixel-aligned annotation to height x width (keypoints scaled with it)."""
    h, w = sample.image.shape[:2]
    keypoints = sample.keypoints
    if keypoints is not None:
        keypoints = np.array(keypoints, dtype=np.float64, copy=True)
        keypoints[..., 0] *= width / w
        keypoints[..., 1] *= height / h
    return replace(
        sample,
        image=resize_rgb(sample.image, height, width),
        mask=None if sample.mask is None else resize_nearest(sample.mask, height, width),
        labels=None if sample.labels is None else resize_nearest(sample.labels, height, width),
        keypoints=keypoints,
        target=None if sample.target is None else resize_rgb(sample.target, height, width),
    )


def mosaic(samples: list[Sample], rows: int, cols: int, height: int, width: int, item_id: str) -> Sample:
    """Tile rows x cols classification samples into one picture of height x width; keeps each tile's class."""
    if len(samples) != rows * cols:
        raise ValueError(f"mosaic needs {rows * cols} samples, got {len(samples)}")
    ch, cw = height // rows, width // cols
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    labels = np.zeros((rows, cols), dtype=np.int64)
    for k, s in enumerate(samples):
        r, c = divmod(k, cols)
        canvas[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = resize_rgb(s.image, ch, cw)
        labels[r, c] = s.label
    return Sample(id=item_id, image=canvas, cell_labels=labels)
