"""LTX-Video image-to-video on the tiny random pipeline (`tiny-ltx`): objective, adapters in the stock pipeline,
shapes, presets and both CLIs end to end: `python -m pytest tests/test_ltx.py -q`."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from arcvdm.backbones import check_config, family_of, load_backbone
from arcvdm.cli import app
from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.sample import generate
from arcvdm.train import ADAPTER_FILE, TARGETS_KEY, LoraTrainer
from test_train_sample import transition_video

SIZE = 64  # two latent pixels a side at LTX's x32 VAE


@pytest.fixture(scope="module")
def config():
    return load_config("smoke", {"backbone": "tiny-ltx", "sample.steps": 2, "sample.batch_size": 2,
                                 "lora.rank": 8, "lora.alpha": 16, "train.lr": 1e-2})


@pytest.fixture(scope="module")
def setup(tmp_path_factory, config):
    """The tiny LTX backbone, its saved pipeline folder and two training videos."""
    backbone = load_backbone("tiny-ltx", device="cpu")
    pipe_dir = tmp_path_factory.mktemp("tiny-ltx-pipeline")
    backbone.pipe.save_pretrained(pipe_dir)
    return backbone, pipe_dir, [transition_video(0, size=SIZE), transition_video(1, size=SIZE)]


def test_the_latents_are_the_pipelines_normalised_first_frame_latents(setup):
    """Encoded once: the VAE sample, normalised with latents_mean / latents_std; the causal encoder makes the first
    latent frame the encoding of the first frame alone, which is what the pipeline conditions on."""
    backbone, _, videos = setup
    vae = backbone.pipe.vae
    encoded = backbone.encode_videos(videos[:1], torch.Generator().manual_seed(3))["latents"]
    assert encoded.shape == (1, 8, 2, 2, 2)  # 9 x 64 x 64 -> 2 x 2 x 2 latents of 8 channels
    pixels = torch.from_numpy(videos[0]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        sample = vae.encode(pixels).latent_dist.sample(torch.Generator().manual_seed(3))
        first_alone = vae.encode(pixels[:, :, :1]).latent_dist.mean
        whole = vae.encode(pixels).latent_dist.mean
    mean, std = vae.latents_mean.view(1, -1, 1, 1, 1), vae.latents_std.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(encoded, (sample - mean) / std)
    torch.testing.assert_close(whole[:, :, :1], first_alone, atol=1e-5, rtol=0)


def ltx_tokens(z: torch.Tensor) -> torch.Tensor:
    """[B, C, f, h, w] -> [B, f*h*w, C], frame by frame (patch 1)."""
    b, c, f, h, w = z.shape
    return z.permute(0, 2, 3, 4, 1).reshape(b, f * h * w, c)


def ltx_prediction(backbone, config, noisy: torch.Tensor, timestep: torch.Tensor, f: int, h: int, w: int):
    b = noisy.shape[0]
    embeds, mask, _, _ = backbone.pipe.encode_prompt(config.prompt, do_classifier_free_guidance=False)
    return backbone.transformer(hidden_states=noisy, encoder_hidden_states=embeds.expand(b, -1, -1),
                                timestep=timestep, encoder_attention_mask=mask.expand(b, -1), num_frames=f, height=h,
                                width=w, rope_interpolation_scale=(8 / 25, 32, 32)).sample


def test_the_loss_equals_an_independent_ltx_objective(setup, config):
    """LTX-Video-Trainer's first-frame-conditioned flow matching written out from the draw: tokens packed frame by
    frame, the first frame's tokens clean at timestep 0, velocity noise - x0, MSE over the other tokens."""
    backbone, _, videos = setup
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(2, progress=False)  # a non-zero adapter
    indices, draw = trainer.draw_batch()
    assert draw["sigmas"].shape == (2,) and bool(((draw["sigmas"] > 0) & (draw["sigmas"] < 1)).all())
    assert torch.equal(draw["first_sigmas"], torch.zeros(2))
    with torch.no_grad():
        ours = trainer.loss(indices, draw).item()
        x0 = trainer.encoded["latents"][indices]  # [B, C, f, h, w]
        b, c, f, h, w = x0.shape
        clean, noise = ltx_tokens(x0), ltx_tokens(draw["noise"])
        sigma = draw["sigmas"].view(b, 1, 1)
        first = torch.zeros(b, f * h * w, dtype=torch.bool)
        first[:, : h * w] = True
        noisy = torch.where(first[..., None], clean, (1 - sigma) * clean + sigma * noise)
        timestep = torch.where(first, 0.0, draw["sigmas"].view(b, 1) * 1000)
        prediction = ltx_prediction(backbone, config, noisy, timestep, f, h, w)
        loss_mask = (~first[..., None]).float()
        theirs = ((prediction - (noise - clean)) ** 2).mul(loss_mask).div(loss_mask.mean()).mean().item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_the_finetrainers_loss_equals_its_objective_written_out(setup, config):
    """finetrainers' LTX-Video objective (`train.first_frame = finetrainers`, paper-ltx) from the same draws: the
    first latent frame noised at its own sigma (capped at 0.25 in 1 step of 10, else the video's sigma), the video's
    timestep on every token, every token in the MSE."""
    backbone, _, videos = setup
    finetrainers = config.model_copy(update={"train": config.train.model_copy(update={"first_frame": "finetrainers"})})
    trainer = LoraTrainer(backbone, videos, finetrainers)
    trainer.train(2, progress=False)
    draws = [trainer.draw_batch() for _ in range(40)]
    conditioned = [d for d in draws if not torch.equal(d[1]["first_sigmas"], d[1]["sigmas"])]
    plain = [d for d in draws if torch.equal(d[1]["first_sigmas"], d[1]["sigmas"])]
    assert conditioned and plain  # both branches drawn (p = 0.1 per step)
    for indices, draw in (conditioned[0], plain[0]):
        with torch.no_grad():
            ours = trainer.loss(indices, draw).item()
            x0, noise = trainer.encoded["latents"][indices], draw["noise"]
            b, _, f, h, w = x0.shape
            s, s0 = draw["sigmas"].view(b, 1, 1, 1, 1), draw["first_sigmas"].view(b, 1, 1, 1, 1)
            noisy = torch.cat([(1 - s0) * x0[:, :, :1] + s0 * noise[:, :, :1],
                               (1 - s) * x0[:, :, 1:] + s * noise[:, :, 1:]], dim=2)
            timestep = (draw["sigmas"] * 1000)[:, None].expand(b, f * h * w)
            prediction = ltx_prediction(backbone, config, ltx_tokens(noisy), timestep, f, h, w)
            theirs = ((prediction - ltx_tokens(noise - x0)) ** 2).mean().item()
        assert ours == pytest.approx(theirs, rel=1e-5)
    # the draws: logit-normal sigmas on finetrainers' 1000-step table (median 0.5), the cap 0.25 below the sigma
    many = torch.stack([trainer.backbone.draw_noise({"latents": torch.zeros(1000, 1, 2, 1, 1)},
                                                    torch.Generator().manual_seed(seed))["first_sigmas"]
                        for seed in range(200)])
    sigmas = backbone.draw_noise({"latents": torch.zeros(4000, 1, 2, 1, 1)}, torch.Generator().manual_seed(0))["sigmas"]
    assert sigmas.median().item() == pytest.approx(0.5, abs=0.03)
    assert torch.allclose(sigmas * 1000, torch.round(sigmas * 1000), atol=1e-3)
    capped = many[(many <= 0.25).all(dim=1)]
    assert 0.05 < len(capped) / len(many) < 0.16  # about 1 step in 10 conditions the first frame


@pytest.mark.parametrize("targets", ["qkvo", "all-linear"])
def test_saved_adapter_loads_into_the_stock_pipeline_and_matches_generate(setup, config, tmp_path, targets):
    """`all-linear` is peft's own: it wraps proj_in, proj_out, the time and caption embeddings too, and the stock
    pipeline's load_lora_weights reproduces it; the file's header names the set."""
    from diffusers import LTXImageToVideoPipeline
    from safetensors import safe_open

    backbone, pipe_dir, videos = setup
    config = config.model_copy(update={"lora": config.lora.model_copy(update={"targets": targets})})
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(5, progress=False)
    image = torch.from_numpy(videos[0][0]).permute(2, 0, 1)[None].float() / 255
    ours = backbone.generate(image, backbone.prompt_embeds(config.prompt), config, [torch.Generator().manual_seed(7)])
    path = trainer.save_adapter(tmp_path)
    assert path.name == ADAPTER_FILE
    assert all(key.startswith("transformer.") and "lora_" in key for key in load_file(path))
    with safe_open(path, "pt") as f:
        assert f.metadata()[TARGETS_KEY] == targets
    wraps_the_head = "transformer.proj_out.lora_A.weight" in load_file(path)
    assert wraps_the_head == (targets == "all-linear")

    assert family_of(str(pipe_dir)) == "ltx"
    stock = LTXImageToVideoPipeline.from_pretrained(pipe_dir)

    def sample(guidance_scale=1.0):
        return stock(image=image, prompt=config.prompt, height=SIZE, width=SIZE, num_frames=9, num_inference_steps=2,
                     guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(7), output_type="np").frames[0]

    base = sample()
    stock.load_lora_weights(tmp_path)
    theirs = sample()
    assert ours.shape == (1, 9, SIZE, SIZE, 3)
    assert np.abs(theirs[-1] - ours[0, -1]).max() <= 1e-5  # the last frame is the prediction
    assert np.abs(theirs - base).max() > 1e-3  # the adapter changed the stock pipeline's output
    # arcvdm.sample.generate is that float video rounded to uint8
    rounded = np.clip(np.round(ours[0] * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(generate(backbone, [videos[0][0]], config, seed=7)[0], rounded)
    # with classifier-free guidance (paper-ltx samples at the pipeline's default 3): the empty negative prompt
    guided = config.model_copy(update={"sample": config.sample.model_copy(update={"guidance_scale": 3.0})})
    ours = backbone.generate(image, backbone.prompt_embeds(config.prompt), guided, [torch.Generator().manual_seed(7)])
    assert np.abs(sample(3.0)[-1] - ours[0, -1]).max() <= 1e-5


def test_the_hub_folder_of_the_text_to_video_pipeline_loads_as_image_to_video(setup, tmp_path):
    """Lightricks/LTX-Video's model_index.json names LTXPipeline; its parts are the I2V pipeline's."""
    from diffusers import LTXImageToVideoPipeline, LTXPipeline

    backbone, _, _ = setup
    backbone.reset_lora()
    LTXPipeline(**backbone.pipe.components).save_pretrained(tmp_path)
    assert family_of(str(tmp_path)) == "ltx"
    loaded = load_backbone(str(tmp_path), device="cpu")
    assert type(loaded.pipe) is LTXImageToVideoPipeline
    for name, weight in backbone.transformer.state_dict().items():
        assert torch.equal(loaded.transformer.state_dict()[name], weight)
    torch.testing.assert_close(loaded.pipe.vae.latents_std, backbone.pipe.vae.latents_std)


def test_lora_target_sets_name_ltx_modules(setup, config):
    backbone, _, videos = setup
    attention = {f"attn{i}.{m}" for i in (1, 2) for m in ("to_q", "to_k", "to_v", "to_out.0")}
    blocks = attention | {"ff.net.0.proj", "ff.net.2"}
    outside = {"proj_in", "proj_out", "time_embed.linear", "time_embed.emb.timestep_embedder.linear_1",
               "time_embed.emb.timestep_embedder.linear_2", "caption_projection.linear_1", "caption_projection.linear_2"}
    for targets, wrapped in (("qk", {f"attn{i}.{m}" for i in (1, 2) for m in ("to_q", "to_k")}),
                             ("qkvo", attention), ("block-linear", blocks), ("all-linear", blocks | outside)):
        lora = config.lora.model_copy(update={"targets": targets})
        LoraTrainer(backbone, videos[:1], config.model_copy(update={"lora": lora}))
        names = {n.removeprefix("transformer_blocks.0.").split(".lora_A")[0]
                 for n, _ in backbone.transformer.named_parameters() if ".lora_A." in n}
        assert names == wrapped


@pytest.mark.parametrize(("overrides", "message"), [
    ({"video.height": 48}, r"video.height = 48: LTX-Video needs a positive multiple of 32 \(nearest: 32 or 64\)"),
    ({"video.width": 720}, r"video.width = 720: LTX-Video needs a positive multiple of 32 \(nearest: 704 or 736\)"),
    ({"video.frames": 13}, r"video.frames = 13: LTX-Video needs F = 8k\+1 frames .*\(nearest: 9 or 17\)"),
    ({"sample.steps": 1}, r"sample.steps = 1: LTX-Video samples with at least 2 denoising steps"),
])
def test_wrong_shapes_and_steps_are_one_line_errors_before_any_model_loads(tmp_path, monkeypatch, samples_dir, overrides, message):
    import arcvdm.backbones

    monkeypatch.setattr(arcvdm.backbones, "load_backbone", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ArcvdmError, match=message):
        check_config(load_config("smoke", {"backbone": "tiny-ltx", **overrides}))
    with pytest.raises(ArcvdmError, match=message):  # the paper's recipe with a shape of another backbone
        check_config(load_config("paper-ltx", overrides))
    flags = [f"--{key.split('.')[1].replace('steps', 'sample-steps')}={value}" for key, value in overrides.items()]
    for command in (["run", str(samples_dir), "--preset", "smoke"], ["vision", "run", "zoom", "--preset", "vision-smoke"]):
        result = CliRunner().invoke(app, [*command, "--backbone", "tiny-ltx", *flags, "--out", str(tmp_path / "run")])
        # the CLI prints an ArcvdmError as its one line and exits 2 (tests/test_cli_run.py)
        assert isinstance(result.exception, ArcvdmError) and re.search(message, str(result.exception))
        assert "\n" not in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_the_paper_ltx_preset_is_table_3_for_arc_and_the_vision_suite():
    from arcvdm.vision.families import FAMILIES
    from arcvdm.vision.presets import vision_config

    arc = load_config("paper-ltx")
    for config in map(check_config, (arc, vision_config("paper-ltx", FAMILIES.get("binary-segmentation"), 30))):
        assert config.backbone == "ltx-video-2b-i2v"
        assert (config.video.frames, config.video.height, config.video.width, config.video.trajectory) == (9, 480, 704, "linear")
        assert (config.lora.rank, config.lora.alpha, config.lora.targets) == (64, 32, "all-linear")
        t = config.train
        assert (t.steps, t.eval_every, t.batch_size, t.lr, t.betas, t.weight_decay, t.warmup_steps, t.max_grad_norm) == \
            (3000, 200, 16, 1e-3, (0.9, 0.99), 0.0, 0, 1.0)
        assert (t.first_frame, t.sigma_sampling) == ("finetrainers", None)  # finetrainers' flags, its objective
        assert config.sample.scheduler == "FlowMatchEulerDiscreteScheduler"
    assert vision_config("paper-ltx", FAMILIES.get("pose"), 3, {"backbone": "tiny-ltx"}).backbone == "tiny-ltx"


def test_trainer_choices_are_the_familys_and_refused_elsewhere_in_one_line():
    assert check_config(load_config("smoke", {"backbone": "tiny-ltx"})).train.first_frame == "clean"  # the default
    switched = check_config(load_config("paper-ltx", {"train.first_frame": "clean"}))
    assert switched.train.first_frame == "clean" and "first_frame" in switched.model_dump_json()
    for backbone, field, value, label in (("tiny-ltx", "sigma_sampling", "logit-normal", "LTX-Video"),
                                          ("tiny-wan", "first_frame", "finetrainers", "Wan2.1 I2V"),
                                          ("tiny", "first_frame", "clean", "CogVideoX1.5")):
        with pytest.raises(ArcvdmError, match=rf"train.{field} = '{value}' is not a {label} setting") as error:
            check_config(load_config("smoke", {"backbone": backbone, f"train.{field}": value}))
        assert "\n" not in str(error.value)
    with pytest.raises(ArcvdmError, match="train.first_frame = 'finetrainers' is not a CogVideoX1.5 setting"):
        check_config(load_config("paper-ltx", {"backbone": "tiny"}))  # the LTX recipe names LTX's choice


def test_the_full_size_random_model_counts_flops_on_meta():
    # 9x480x704 -> 2x15x22 = 660 video tokens, 128 text tokens, width 2048, 28 blocks. Per block, in matmul FLOPs:
    # self-attention 8Nd^2 + 4N^2d, cross-attention 4(N+L)d^2 + 4NLd, feed-forward 16Nd^2; outside the blocks the
    # per-token timestep embedding (N tokens through 256->d->d->6d) dominates: 2.393 TFLOP in all.
    big = load_backbone("ltx-video-2b-i2v-random", device="meta")
    assert sum(p.numel() for p in big.transformer.parameters()) == pytest.approx(1.92e9, rel=0.01)
    n, text, d = 660, 128, 2048
    block = 8 * n * d**2 + 4 * n**2 * d + 4 * (n + text) * d**2 + 4 * n * text * d + 16 * n * d**2
    outside = 2 * n * (256 * d + 7 * d**2) + 2 * text * (4096 * d + d**2) + 2 * 2 * n * 128 * d
    assert big.forward_flops(9, 480, 704) == pytest.approx(28 * block + outside, rel=1e-3)
    assert big.prompt_embeds("any")["prompt_embeds"].shape == (1, 128, 4096)


def test_arc_run_end_to_end(tmp_path, samples_dir):
    out = tmp_path / "ltx"
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--tasks", "flip-h", "--out", str(out), "--preset", "smoke",
                                      "--backbone", "tiny-ltx", "--steps", "2", "--eval-every", "1", "--sample-steps", "2"])
    assert result.exit_code == 0, result.output
    assert "1 problem: 1 done (0 skipped as already done), 0 failed" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "tiny-ltx" and config["sample"]["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    record = json.loads((out / "problems" / "flip-h.json").read_text())
    assert record["status"] == "done" and len(record["attempts"]) == 1 and record["checkpoints"]


def test_vision_run_end_to_end(tmp_path):
    out = tmp_path / "seg"
    result = CliRunner().invoke(app, ["vision", "run", "binary-segmentation", "--data", "synthetic", "--shots", "2",
                                      "--seeds", "1", "--eval", "2", "--preset", "vision-smoke", "--backbone", "tiny-ltx",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1/1 problems done" in result.output
    record = json.loads((out / "problems" / "binary-segmentation-n2-seed0.json").read_text())
    assert record["status"] == "done" and 0.0 <= record["metrics"]["miou"] <= 1.0 and record["forward_flops"] > 0
    assert json.loads((out / "config.json").read_text())["backbone"] == "tiny-ltx"
