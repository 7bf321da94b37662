"""Seeded synthetic data for every vision family: shapes with masks and depth on textured backgrounds, stick figures
with COCO keypoints, 7 classes of motif pictures, a fixed picture style. Same (kind, seed, size) -> same samples."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from arcvdm.errors import ArcvdmError
from arcvdm.vision.drawing import NUM_SYMBOLS, SYMBOL_COLORS, render_pose, symbol
from arcvdm.vision.items import Sample

KINDS = ("shapes", "figures", "classes", "depth", "style")
CLASS_SIZE = 64  # TinyImageNet's picture size


def texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field with stripes and grain: background clutter the model must ignore."""
    low = rng.uniform(40, 200, size=(4, 4, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(low).resize((width, height), Image.BILINEAR), dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 18)
    stripes = 18 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    grain = rng.normal(0, 6, size=(height, width, 3))
    return np.clip(base + stripes[..., None] + grain, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, category: int, height: int, width: int) -> np.ndarray:
    """Category 1 (the segmented one) an ellipse, 2 a rectangle, 3 a triangle."""
    size = rng.uniform(0.2, 0.45) * min(height, width)
    cx, cy = rng.uniform(size / 2, width - size / 2), rng.uniform(size / 2, height - size / 2)
    box = [cx - size / 2, cy - size / 2 * rng.uniform(0.6, 1.0), cx + size / 2, cy + size / 2 * rng.uniform(0.6, 1.0)]
    img = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(img)
    if category == 1:
        d.ellipse(box, fill=255)
    elif category == 2:
        d.rectangle(box, fill=255)
    else:
        d.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=255)
    return np.asarray(img) > 127


def shapes(rng: np.random.Generator, height: int, width: int, item_id: str) -> tuple[Sample, np.ndarray]:
    """Shapes of 3 categories (at least one ellipse, the 'segmented' one) on a texture; also returns a depth map."""
    image = texture(rng, height, width)
    labels = np.zeros((height, width), dtype=np.int64)
    depth = np.tile(np.linspace(0.0, 0.25, height)[:, None], (1, width))  # floor-like: nearer at the bottom
    categories = [1] + list(rng.integers(1, 4, size=rng.integers(0, 3)))
    nearness = rng.uniform(0.35, 1.0, size=len(categories))
    for k in np.argsort(nearness):  # far first, so nearer shapes occlude
        mask = _shape_mask(rng, int(categories[k]), height, width)
        color = rng.uniform(0, 255, size=3)
        image[mask] = np.clip(color + rng.normal(0, 8, size=(mask.sum(), 3)), 0, 255).astype(np.uint8)
        labels[mask] = categories[k]
        depth[mask] = nearness[k]
    depth_rgb = np.repeat((depth * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    return Sample(id=item_id, image=image, mask=labels == 1, labels=labels), depth_rgb


def figure_keypoints(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """COCO-17 keypoints [17,3] of a random stick figure standing inside the picture (visibility 2)."""
    s = rng.uniform(0.55, 0.8) * height
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.45, 0.55) * height
    k = np.zeros((17, 3))
    shoulder, hip = np.array([cx, cy - 0.2 * s]), np.array([cx, cy + 0.1 * s])
    nose = shoulder - (0, 0.14 * s)
    k[0, :2] = nose
    k[1, :2], k[2, :2] = nose + (-0.03 * s, -0.02 * s), nose + (0.03 * s, -0.02 * s)
    k[3, :2], k[4, :2] = nose + (-0.055 * s, 0), nose + (0.055 * s, 0)
    k[5, :2], k[6, :2] = shoulder + (-0.11 * s, 0), shoulder + (0.11 * s, 0)
    k[11, :2], k[12, :2] = hip + (-0.07 * s, 0), hip + (0.07 * s, 0)
    for side, (sh, el, wr) in ((-1, (5, 7, 9)), (1, (6, 8, 10))):
        a = np.pi / 2 - side * rng.uniform(0.2, 1.4)  # hanging down, swung outwards
        b = a - side * rng.uniform(-0.6, 0.6)
        k[el, :2] = k[sh, :2] + 0.16 * s * np.array([np.cos(a), np.sin(a)])
        k[wr, :2] = k[el, :2] + 0.14 * s * np.array([np.cos(b), np.sin(b)])
    for side, (hp, kn, an) in ((-1, (11, 13, 15)), (1, (12, 14, 16))):
        a = np.pi / 2 - side * rng.uniform(0.05, 0.45)
        b = a + side * rng.uniform(-0.2, 0.3)
        k[kn, :2] = k[hp, :2] + 0.2 * s * np.array([np.cos(a), np.sin(a)])
        k[an, :2] = k[kn, :2] + 0.2 * s * np.array([np.cos(b), np.sin(b)])
    inside = (k[:, 0] >= 0) & (k[:, 0] < width) & (k[:, 1] >= 0) & (k[:, 1] < height)
    k[:, 2] = np.where(inside, 2, 0)
    return k


def figures(rng: np.random.Generator, height: int, width: int, item_id: str) -> Sample:
    """One stick figure, drawn in one body colour over a texture, with its keypoints."""
    image = texture(rng, height, width)
    keypoints = figure_keypoints(rng, height, width)[None]
    parts, _ = render_pose(keypoints, height, width)
    body = parts.any(-1)
    image[body] = rng.uniform(0, 255, size=3).astype(np.uint8)
    return Sample(id=item_id, image=image, keypoints=keypoints)


def classes(rng: np.random.Generator, label: int, item_id: str, size: int = CLASS_SIZE) -> Sample:
    """A picture of class `label`: that class's motif, jittered in colour, scale and place, on a texture."""
    image = texture(rng, size, size)
    motif_size = int(rng.uniform(0.45, 0.8) * size)
    mask = symbol(label, motif_size).any(-1)
    y0, x0 = rng.integers(0, size - motif_size + 1, size=2)
    color = np.clip(np.array(SYMBOL_COLORS[label]) + rng.normal(0, 25, size=3), 0, 255).astype(np.uint8)
    image[y0 : y0 + motif_size, x0 : x0 + motif_size][mask] = color
    return Sample(id=item_id, image=image, label=label)


def stylize(image: np.ndarray) -> np.ndarray:
    """The synthetic 'style': posterized to 4 levels, channels rotated, edges inked dark."""
    poster = (image // 64) * 85
    styled = poster[..., [2, 0, 1]].astype(np.int16)
    grey = image.astype(np.float32).mean(-1)
    edges = np.abs(np.diff(grey, axis=0, prepend=grey[:1])) + np.abs(np.diff(grey, axis=1, prepend=grey[:, :1]))
    styled[edges > 40] = 20
    return styled.astype(np.uint8)


def sample(kind: str, index: int, seed: int, height: int, width: int) -> Sample:
    """Sample `index` of the synthetic stream (kind, seed): independent of any other index, so pools can be lazy.
    `classes` cycles the 7 labels with the index and is always CLASS_SIZE square."""
    if kind not in KINDS:
        raise ArcvdmError(f"unknown synthetic kind {kind!r}: use one of {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    item_id = f"synthetic-{kind}-{seed}-{index}"
    if kind == "shapes":
        return shapes(rng, height, width, item_id)[0]
    if kind == "depth":
        shaped, depth = shapes(rng, height, width, item_id)
        return Sample(id=item_id, image=shaped.image, target=depth)
    if kind == "figures":
        return figures(rng, height, width, item_id)
    if kind == "classes":
        return classes(rng, index % NUM_SYMBOLS, item_id)
    image = shapes(rng, height, width, item_id)[0].image
    return Sample(id=item_id, image=image, target=stylize(image))
