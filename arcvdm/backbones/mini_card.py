"""The check of a pretrained folder's model card (`model_card.json`, written by `arcvdm/pretrain/card.py`).

The card lists every weight file with its sha256; `verify_folder` checks them before a load, so a missing
or damaged file is one line naming it and the command that rebuilds it, not a traceback from safetensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from arcvdm.errors import ArcvdmError

CARD_JSON = "model_card.json"
CARD_README = "README.md"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rebuild_command(seed: int) -> str:
    return f"arcvdm backbone pretrain-mini --out DIR --seed {seed}"


def verify_folder(folder: Path) -> None:
    """Raise a one-line ArcvdmError if a file the card lists (weights, configs, tokenizer) is missing or differs
    from its sha256.

    A folder without a card (any other `save_pretrained` folder) is left to `from_pretrained`.
    """
    card_path = Path(folder) / CARD_JSON
    if not card_path.is_file():
        return
    try:
        card = json.loads(card_path.read_text())
        files = card["files"]
        rebuild = card.get("rebuild") or rebuild_command(card["recipe"]["seed"])  # the command that built this folder
    except (ValueError, KeyError, TypeError) as e:
        raise ArcvdmError(f"{card_path}: not a readable model card ({e}); reinstall arcvdm or rebuild with "
                          f"`arcvdm backbone pretrain-mini --out DIR`") from None
    for name, entry in files.items():
        path = Path(folder) / name
        problem = "is missing" if not path.is_file() else None
        if problem is None and sha256(path) != entry["sha256"]:
            problem = "does not match the sha256 in its model card (damaged or replaced)"
        if problem:
            raise ArcvdmError(f"backbone weights {path} {problem}: reinstall arcvdm, or rebuild the folder with "
                              f"`{rebuild}` and pass --backbone DIR")
