"""Vision presets: the paper's training schedules per family and shot count, and a CPU smoke setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from arcvdm.config import PAPER_LTX, RunConfig, load_config
from arcvdm.registry import Registry
from arcvdm.vision.families import Family


def paper_schedule(family: Family, shots: int) -> tuple[int, int]:
    """(train steps, eval every) from the paper: segmentation/pose 1000 for n <= 5, 2000 for n = 10, 4000 for
    n = 30, evaluated every 1000; TinyImageNet grids 500/500; every other task 1200 evaluated every 300."""
    if family.schedule == "dense":
        return (1000 if shots <= 5 else 2000 if shots <= 10 else 4000), 1000
    if family.schedule == "grid":
        return 500, 500
    return 1200, 300


def _paper(family: Family, shots: int) -> dict[str, Any]:
    steps, eval_every = paper_schedule(family, shots)
    frames, height, width = family.size
    return {"video.frames": frames, "video.height": height, "video.width": width, "train.steps": steps, "train.eval_every": eval_every}


def _paper_ablation(family: Family, shots: int) -> dict[str, Any]:
    """The paper's segmentation/pose ablations sampled with 5 steps (enough after fine-tuning)."""
    return {**_paper(family, shots), **({"sample.steps": 5} if family.schedule == "dense" else {})}


def _smoke(family: Family, shots: int) -> dict[str, Any]:
    """Tiny backbone on CPU in seconds: 9x64x64 videos, 4 steps, evaluated every 2, 2 sampling steps."""
    return {
        "backbone": "tiny", "video.frames": 9, "video.height": 64, "video.width": 64,
        "lora.rank": 8, "lora.alpha": 8, "train.steps": 4, "train.eval_every": 2, "train.lr": 1e-3,
        "train.batch_size": 1, "sample.steps": 2,
    }


def _recipe(settings: dict[str, Any]) -> Callable[[Family, int], dict[str, Any]]:
    """A backbone's fixed recipe (an ARC preset of arcvdm/config.py) as a vision preset: the same video size,
    LoRA, optimizer and schedule for every family and shot count."""

    def dotted(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    return lambda family, shots: dotted(settings)


VISION_PRESETS: Registry[Callable[[Family, int], dict[str, Any]]] = Registry("vision preset")
VISION_PRESETS.add("paper", _paper)
VISION_PRESETS.add("paper-ablation", _paper_ablation)
VISION_PRESETS.add("vision-smoke", _smoke)
VISION_PRESETS.add("paper-ltx", _recipe(PAPER_LTX))  # the paper's Table 3 recipe for LTX-Video (its Table 2)


def vision_config(preset: str, family: Family, shots: int, overrides: dict[str, Any] | None = None) -> RunConfig:
    """RunConfig for one vision run: a vision preset (or a YAML/JSON config file), then flag overrides (None = unset)."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if preset in VISION_PRESETS or not Path(preset).is_file():
        settings = VISION_PRESETS.get(preset)(family, shots)  # unknown names fail here with "did you mean"
        config = load_config("paper-arc", {**settings, "family": family.name, **flags})
        return config.model_copy(update={"preset": preset})
    return load_config(preset, {"family": family.name, **flags})
