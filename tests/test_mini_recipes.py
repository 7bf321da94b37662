"""The mini's pretraining recipes and options (docs/mini.md, "Towards a mini that generalises"): the GPU recipe at toy
size on the CPU, the EMA, the answer weighting, captions, data drawn by worker processes."""

import json
from dataclasses import asdict, replace
from functools import partial

import numpy as np
import pytest
import torch

from arcvdm.backbones.base import latent_mse
from arcvdm.pretrain.data import captioned_videos, random_task, step_data, stream_rng, task_videos
from arcvdm.pretrain.generator import INSIDE
from arcvdm.pretrain.stages import Pretrainer, Recipe, answer_weights, fresh_step_data, gpu_recipe


def test_gpu_recipe_at_toy_size_on_cpu_writes_a_loadable_folder_with_its_card(tmp_path):
    from diffusers import CogVideoXImageToVideoPipeline
    from typer.testing import CliRunner

    from arcvdm.backbones import load_backbone
    from arcvdm.backbones.mini_card import sha256
    from arcvdm.cli import app

    out = tmp_path / "mini-gpu"
    args = ["backbone", "pretrain-mini", "--out", str(out), "--recipe", "gpu", "--device", "cpu", "--toy",
            "--workers", "2", "--seed", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["recipe"] == asdict(gpu_recipe(5).toy())
    assert card["recipe"]["fresh_videos"] and (card["recipe"]["canvas"], card["recipe"]["layout"]) == (80, "token-aligned")
    assert card["rebuild"] == "arcvdm backbone pretrain-mini --out DIR --seed 5 --recipe gpu --device cpu --workers 2 --toy"
    assert f"CPU cores ({torch.get_num_threads()} torch thread" in card["machine"]
    readme = (out / "README.md").read_text()
    assert "fresh videos every step" in readme
    assert "--set video.height=80 --set video.width=80 --set codec.layout=token-aligned`" in readme
    assert all(sha256(out / name) == e["sha256"] for name, e in card["files"].items())
    config = load_backbone(str(out), "cpu", "fp32").transformer.config
    assert (config.num_layers, config.num_attention_heads, config.attention_head_dim) == (2, 4, 64)
    assert CogVideoXImageToVideoPipeline.from_pretrained(out).transformer.config.attention_head_dim == 64


def test_pretrain_refuses_an_unknown_recipe_and_bad_options(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.cli import app

    for flags, message in ((["--recipe", "tpu"], "use one of cpu, gpu"), (["--ema-decay", "1"], "below 1"),
                           (["--answer-weight", "0"], "must be positive"), (["--head-dim", "0"], "positive whole number")):
        result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(tmp_path / "x"), *flags])
        assert result.exit_code != 0 and message in str(result.exception)
        assert not (tmp_path / "x").exists()


def test_pretrain_sizes_the_transformer_from_its_flags(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.backbones import BACKBONES, load_backbone
    from arcvdm.cli import app

    out = tmp_path / "mini-small"
    size = ["--layers", "1", "--heads", "2", "--head-dim", "16"]
    result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(out), "--toy",
                                      "--vae-from", BACKBONES.get("mini").source, *size])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    recipe = card["recipe"]
    assert (recipe["transformer_layers"], recipe["transformer_heads"], recipe["transformer_head_dim"]) == (1, 2, 16)
    assert " ".join(size) in card["rebuild"]
    config = load_backbone(str(out), "cpu", "fp32").transformer.config
    assert (config.num_layers, config.num_attention_heads, config.attention_head_dim) == (1, 2, 16)


def _stage2(recipe: Recipe, out) -> dict[str, torch.Tensor]:
    """Stage 2 alone (the VAE as initialised), written like a finished pretraining; the saved transformer's weights."""
    from diffusers import CogVideoXTransformer3DModel

    pretrainer = Pretrainer(out, recipe, progress=False)
    pretrainer.stage = "transformer"
    pretrainer.run()
    return dict(CogVideoXTransformer3DModel.from_pretrained(out / "transformer").float().named_parameters())


def test_the_ema_is_what_gets_saved_and_differs_from_the_live_weights(tmp_path):
    from arcvdm.backbones.mini_architecture import build_mini_pipeline

    recipe = replace(Recipe(seed=1).toy(), transformer_steps=1, ema_decay=0.5)
    live = _stage2(replace(recipe, ema_decay=0.0), tmp_path / "live")
    averaged = _stage2(recipe, tmp_path / "ema")
    initial = dict(build_mini_pipeline(1, num_layers=2).transformer.named_parameters())
    for name, value in averaged.items():  # one step: the average is halfway between the start and the live weights
        expected = (0.5 * initial[name] + 0.5 * live[name]).detach()
        assert torch.allclose(value, expected, rtol=2e-3, atol=1e-5), name
    assert max((averaged[n] - live[n]).abs().max().item() for n in live) > 1e-4


def test_the_answer_weight_changes_the_loss_only_on_the_answer_latents():
    target = torch.zeros(2, 4, 3, 2, 2)
    weights = answer_weights(2, 4, 5.0)
    assert weights[:, -1].eq(5).all() and weights[:, :-1].eq(1).all()
    before, answer = target.clone(), target.clone()
    before[:, :3] += torch.randn(2, 3, 3, 2, 2)
    answer[:, 3] += torch.randn(2, 3, 2, 2)
    assert torch.allclose(latent_mse(before, target, weights), latent_mse(before, target))
    assert torch.allclose(latent_mse(answer, target, weights), 5 * latent_mse(answer, target))
    assert torch.equal(latent_mse(answer, target), torch.nn.functional.mse_loss(answer, target))  # runs: unchanged


def test_the_backbone_loss_honours_frame_weights_only_when_given():
    from arcvdm.backbones import load_backbone

    backbone = load_backbone("tiny", "cpu", "fp32")
    videos = [np.random.default_rng(i).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8) for i in range(2)]
    batch = backbone.encode_videos(videos, torch.Generator().manual_seed(0))
    draw = backbone.draw_noise(batch, torch.Generator().manual_seed(1))
    prompt = backbone.prompt_embeds("A smooth transition from the first frame to the last frame.")
    frames = batch["latents"].shape[1]
    plain = backbone.loss(batch, draw, prompt)
    ones = backbone.loss({**batch, "frame_weights": torch.ones(2, frames)}, draw, prompt)
    heavier = backbone.loss({**batch, "frame_weights": answer_weights(2, frames, 3.0)}, draw, prompt)
    assert torch.allclose(plain, ones) and heavier > plain


def test_captions_name_the_rule_and_share_zero_draws_the_pool_data():
    rng, reference = stream_rng("t", 0, 0), stream_rng("t", 0, 0)
    videos, captions = captioned_videos(rng, 12, 0.0)
    drawn: list = []
    while len(drawn) < 12:
        drawn += task_videos(random_task(reference), reference)
    assert captions == [None] * 12 and all(np.array_equal(a, b) for a, b in zip(videos, drawn))
    _, named = captioned_videos(stream_rng("t", 0, 1), 40, 1.0)
    assert set(named) <= set(INSIDE) and len(set(named)) > 3
    _, mixed = captioned_videos(stream_rng("t", 0, 2), 400, 0.5)
    assert 0.3 < sum(c is not None for c in mixed) / 400 < 0.7


def test_the_mini_text_encoder_tells_every_rule_caption_apart():
    from arcvdm.backbones import load_backbone
    from arcvdm.config import NEUTRAL_PROMPT

    backbone = load_backbone("mini", "cpu", "fp32")
    embeds = [backbone.prompt_embeds(c)["prompt_embeds"] for c in (NEUTRAL_PROMPT, *INSIDE)]
    assert all(not torch.equal(a, b) for i, a in enumerate(embeds) for b in embeds[i + 1:])


@pytest.mark.parametrize("caption_share", [0.0, 0.8])
def test_worker_processes_draw_what_the_main_process_would(caption_share):
    recipe = replace(Recipe(seed=2, caption_share=caption_share), transformer_batch=3)
    make = partial(fresh_step_data, recipe)
    here, there = list(step_data(make, 1, 4, workers=0)), list(step_data(make, 1, 4, workers=2))
    assert len(here) == len(there) == 3
    for (v1, c1, s1), (v2, c2, s2) in zip(here, there):
        assert np.array_equal(v1, v2) and c1 == c2 and s1 == s2
    assert not np.array_equal(here[0][0], here[1][0])  # each step its own videos


def test_a_token_aligned_stage_two_on_a_kept_vae_writes_an_80px_folder_runs_accept(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.backbones import BACKBONES, largest_canvas, load_backbone
    from arcvdm.cli import app

    out, shipped_dir = tmp_path / "mini-80", BACKBONES.get("mini").source
    args = ["backbone", "pretrain-mini", "--out", str(out), "--toy", "--canvas", "80", "--layout", "token-aligned",
            "--vae-from", shipped_dir]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["video"] == {"frames": 9, "height": 80, "width": 80} and card["data"]["layouts"] == {"token-aligned": 1.0}
    assert "vae_final_loss" not in card["metrics"] and f"--vae-from {shipped_dir}" in card["rebuild"]
    assert card["metrics"]["vae_round_trip"]["exact"] == card["metrics"]["vae_round_trip"]["grids"] > 0
    kept, shipped = load_backbone(str(out), "cpu", "fp32").pipe.vae, load_backbone("mini", "cpu", "fp32").pipe.vae
    assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(), shipped.state_dict().values()))
    assert largest_canvas(str(out)) == (80, 80) and largest_canvas("mini") == (64, 64)


def test_token_aligned_pretraining_videos_put_every_cell_on_one_token():
    from arcvdm import codec
    from arcvdm.backbones.mini_architecture import TOKEN
    from arcvdm.pretrain.data import Geometry

    geometry, rng = Geometry(80, "token-aligned"), stream_rng("t", 0, 3)
    for _ in range(20):
        task = random_task(rng)
        grids = [g.array for g in task.visible_grids()]
        plan = geometry.plan(grids, rng)
        for grid in grids:
            top, left, cell = plan.geometry(grid.shape)
            assert cell + codec.LINE_PX == TOKEN and (top + 1) % TOKEN == 0 and (left + 1) % TOKEN == 0
        assert all(v.shape == (9, 80, 80, 3) for v in task_videos(task, rng, geometry))


def test_pretrain_refuses_a_canvas_its_layout_cannot_draw(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.cli import app

    for flags, message in ((["--canvas", "64", "--layout", "token-aligned"], "e.g. --canvas 80"),
                           (["--canvas", "72"], "multiple of 16"), (["--layout", "diagonal"], "use centered or token-aligned"),
                           (["--vae-from", str(tmp_path)], "no vae/config.json there")):
        result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(tmp_path / "x"), *flags])
        assert result.exit_code != 0 and message in str(result.exception), result.output
        assert not (tmp_path / "x").exists()
