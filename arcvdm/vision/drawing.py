"""Target pictures drawn from annotations: pose parts on black, class symbols, category masks."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from arcvdm.vision.metrics import POSE_COLORS

# COCO keypoint indices: 0-4 head (nose, eyes, ears), 5/6 shoulders, 7/8 elbows, 9/10 wrists,
# 11/12 hips, 13/14 knees, 15/16 ankles. Each limb is its own part instance (its own centroid).
HEAD = (0, 1, 2, 3, 4)
TORSO = (5, 6, 12, 11)
LIMBS = {"arm": ((5, 7, 9), (6, 8, 10)), "leg": ((11, 13, 15), (12, 14, 16))}

# Background black, then one colour per category (image-to-mask) — far apart in RGB so decoding is robust.
CATEGORY_COLORS = np.array(
    [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 255, 255), (255, 128, 0)],
    dtype=np.uint8,
)


def line_width(height: int, width: int) -> int:
    return max(2, round(min(height, width) / 40))


def _part_masks(person: np.ndarray, height: int, width: int) -> list[tuple[str, Image.Image]]:
    """One L-mode mask per drawn part instance of one person, in drawing order (head last, on top)."""
    lw = line_width(height, width)
    visible = person[:, 2] > 0
    pt = lambda i: (float(person[i, 0]), float(person[i, 1]))  # noqa: E731
    parts: list[tuple[str, Image.Image]] = []

    def new() -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (width, height), 0)
        return img, ImageDraw.Draw(img)

    img, draw = new()
    if all(visible[i] for i in TORSO):
        draw.polygon([pt(i) for i in TORSO], fill=255)
    else:
        for a, b in ((5, 6), (6, 12), (12, 11), (11, 5)):
            if visible[a] and visible[b]:
                draw.line([pt(a), pt(b)], fill=255, width=lw)
    parts.append(("torso", img))
    for name in ("leg", "arm"):
        for chain in LIMBS[name]:
            img, draw = new()
            for a, b in zip(chain, chain[1:]):
                if visible[a] and visible[b]:
                    draw.line([pt(a), pt(b)], fill=255, width=lw)
            parts.append((name, img))
    head = person[list(HEAD)][visible[list(HEAD)], :2]
    img, draw = new()
    if len(head):
        cx, cy = head.mean(0)
        spread = np.sqrt(((head - (cx, cy)) ** 2).sum(1)).max() if len(head) > 1 else 0.0
        r = max(1.5 * lw, 1.2 * spread)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    parts.append(("head", img))
    return parts


def render_pose(keypoints: np.ndarray, height: int, width: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paint every person's parts (head white, torso blue, arms red, legs green) on black.

    Returns the picture and the annotated part centroids (x, y) per part colour, one per drawn part instance.
    """
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    centroids: dict[str, list[tuple[float, float]]] = {name: [] for name in POSE_COLORS}
    people = np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3)
    drawn = [part for person in people for part in _part_masks(person, height, width)]
    # Draw all torsos, then legs, arms, heads, so a part of one person never hides another's head.
    order = {"torso": 0, "leg": 1, "arm": 2, "head": 3}
    for name, img in sorted(drawn, key=lambda p: order[p[0]]):
        mask = np.asarray(img) > 127
        if not mask.any():
            continue
        canvas[mask] = POSE_COLORS[name]
        ys, xs = np.nonzero(mask)
        centroids[name].append((xs.mean(), ys.mean()))
    return canvas, {k: np.array(v, dtype=np.float64).reshape(-1, 2) for k, v in centroids.items()}


# Grid classification: one distinct shape in one distinct colour per class.
SYMBOL_SHAPES = ("disc", "square", "triangle", "cross", "diamond", "ring", "bar")
SYMBOL_COLORS = ((255, 60, 60), (60, 220, 60), (70, 110, 255), (255, 230, 40), (230, 60, 230), (40, 230, 230), (255, 150, 30))
NUM_SYMBOLS = len(SYMBOL_SHAPES)


@lru_cache(maxsize=64)
def symbol(index: int, size: int) -> np.ndarray:
    """The class symbol [size,size,3] uint8: shape SYMBOL_SHAPES[index] in SYMBOL_COLORS[index] on black."""
    img = Image.new("RGB", (size, size), (0, 0, 0))
    d = ImageDraw.Draw(img)
    color, m, s = SYMBOL_COLORS[index], size * 0.15, size * 0.85
    c = size / 2
    shape = SYMBOL_SHAPES[index]
    if shape == "disc":
        d.ellipse([m, m, s, s], fill=color)
    elif shape == "square":
        d.rectangle([m, m, s, s], fill=color)
    elif shape == "triangle":
        d.polygon([(c, m), (s, s), (m, s)], fill=color)
    elif shape == "cross":
        t = size * 0.12
        d.rectangle([c - t, m, c + t, s], fill=color)
        d.rectangle([m, c - t, s, c + t], fill=color)
    elif shape == "diamond":
        d.polygon([(c, m), (s, c), (c, s), (m, c)], fill=color)
    elif shape == "ring":
        d.ellipse([m, m, s, s], fill=color)
        d.ellipse([c - size * 0.18, c - size * 0.18, c + size * 0.18, c + size * 0.18], fill=(0, 0, 0))
    else:  # bar
        d.rectangle([m, c - size * 0.15, s, c + size * 0.15], fill=color)
    out = np.asarray(img)
    out.setflags(write=False)
    return out


def symbol_tile(index: int, height: int, width: int) -> np.ndarray:
    square = symbol(index, max(height, width))
    return square if height == width else np.asarray(Image.fromarray(square).resize((width, height), Image.NEAREST))


def render_symbol_grid(cell_labels: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = cell_labels.shape
    ch, cw = height // rows, width // cols
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            canvas[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = symbol_tile(int(cell_labels[r, c]), ch, cw)
    return canvas


def grid_cells(frame: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Split a frame into [rows*cols, h, w, 3] cells (row-major)."""
    ch, cw = frame.shape[0] // rows, frame.shape[1] // cols
    return np.stack([frame[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] for r in range(rows) for c in range(cols)])


def color_labels(labels: np.ndarray) -> np.ndarray:
    if labels.max(initial=0) >= len(CATEGORY_COLORS):
        raise ValueError(f"at most {len(CATEGORY_COLORS) - 1} categories can be coloured, got label {labels.max()}")
    return CATEGORY_COLORS[labels]


def nearest_color_labels(frame: np.ndarray, palette: np.ndarray = CATEGORY_COLORS) -> np.ndarray:
    d = ((frame.astype(np.float32)[:, :, None, :] - palette.astype(np.float32)[None, None]) ** 2).sum(-1)
    return d.argmin(-1)
