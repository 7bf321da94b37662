"""Write frames as PNG and videos as GIF (atomically): what `arcvdm render` and the solver save for people to look at."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from arcvdm.errors import ArcvdmError
from arcvdm.io import atomic_write_bytes

# The largest frame side drawn or trained on: 3x the widest video a backbone here is made for (CogVideoX1.5's
# default 1360x768), and an RGB frame stays under 51 MB. A 100000 px side would need 30 GB per frame.
MAX_CANVAS_SIDE = 4096


def check_canvas(height: int, width: int) -> None:
    """Refuse a frame size no backbone draws, in one line, before anything is allocated."""
    if not (1 <= height <= MAX_CANVAS_SIDE and 1 <= width <= MAX_CANVAS_SIDE):
        raise ArcvdmError(f"--height {height} --width {width}: each side must be 1 to {MAX_CANVAS_SIDE} px (a "
                          f"{height}x{width} RGB frame is {3 * max(height, 0) * max(width, 0) / 1e9:.3g} GB); "
                          "the paper draws 480x480 to 480x720")


def save_png(frame: np.ndarray, path: str | os.PathLike) -> Path:
    """A uint8 [H, W, 3] frame as a lossless PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def save_gif(video: np.ndarray, path: str | os.PathLike, fps: float = 4.0) -> Path:
    """A uint8 [F, H, W, 3] video as a looping GIF (palette-quantised: for viewing, not for decoding)."""
    from PIL import Image

    frames = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in video]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return atomic_write_bytes(path, buf.getvalue())
