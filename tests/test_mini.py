"""The pretrained `mini` backbone: shipped weights, stock loading, bad weights, pretraining's folder rules, and the
chain learning (a LoRA on mini memorises a demo task's train pairs exactly)."""

import json
import shutil
from pathlib import Path

import pytest

from arcvdm.errors import ArcvdmError

MINI = Path(__file__).resolve().parents[1] / "arcvdm" / "backbones" / "mini"


def _card() -> dict:
    return json.loads((MINI / "model_card.json").read_text())


def test_shipped_files_match_their_recorded_sha256():
    from arcvdm.pretrain.card import sha256

    files = _card()["files"]
    assert {"transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= set(files)
    assert sum(e["bytes"] for e in files.values()) <= 8 * 2**20
    for name, entry in files.items():
        assert sha256(MINI / name) == entry["sha256"], name


def test_a_stock_pipeline_loads_the_shipped_folder():
    import torch
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline.from_pretrained(MINI, dtype=torch.float32)
    assert pipe.vae_scale_factor_spatial == 4 and pipe.transformer.config.patch_size_t == 2
    assert pipe.transformer.config.ofs_embed_dim and pipe.transformer.config.use_rotary_positional_embeddings
    assert pipe.transformer.dtype == torch.float32


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
def test_bad_weights_are_one_line_naming_the_file_and_the_rebuild(tmp_path, damage):
    from arcvdm.backbones import load_backbone

    folder = tmp_path / "mini"
    shutil.copytree(MINI, folder)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    with pytest.raises(ArcvdmError) as e:
        load_backbone(str(folder), "cpu", "fp32")
    message = str(e.value)
    assert "\n" not in message and str(weights) in message and "arcvdm backbone pretrain-mini" in message


def test_pretrain_refuses_a_folder_holding_something_else(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.cli import app

    (tmp_path / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(tmp_path), "--minutes", "0.01"])
    assert result.exit_code != 0 and "nothing was overwritten" in str(result.exception)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"
