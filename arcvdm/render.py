"""Write frames as PNG and videos as GIF (atomically): what `arcvdm render` and the solver save for people to look at."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from arcvdm.io import atomic_write_bytes


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
