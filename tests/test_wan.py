"""Wan2.1 and Wan2.2 TI2V image-to-video on tiny random pipelines: stock-pipeline equality, adapter files, the reference objective,
shapes, names and the end-to-end commands: `python -m pytest tests/test_wan.py -q`."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from arcvdm.backbones import check_config, family_of, load_backbone
from arcvdm.cli import app
from arcvdm.config import load_config
from arcvdm.errors import ArcvdmError
from arcvdm.train import LoraTrainer
from test_train_sample import transition_video

FRAMES, SIZE = 5, 32


def stock_last_frame(pipe, first: np.ndarray, config, seed: int) -> np.ndarray:
    """The stock pipeline from a picture and the prompt text, as a diffusers user calls it: float, last frame."""
    frames = pipe(image=Image.fromarray(first), prompt=config.prompt, height=SIZE, width=SIZE, num_frames=FRAMES,
                  num_inference_steps=config.sample.steps, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
    return frames[-1]


def ours_last_frame(backbone, first: np.ndarray, config, seed: int) -> np.ndarray:
    image = torch.from_numpy(first).permute(2, 0, 1)[None].float() / 255
    out = backbone.generate(image, backbone.prompt_embeds(config.prompt), config, [torch.Generator().manual_seed(seed)])
    assert out.shape == (1, FRAMES, SIZE, SIZE, 3) and out.dtype == np.float32
    return out[0, -1]


NAMES = ("tiny-wan", "tiny-wan2.2")
FAMILY = {"tiny-wan": "wan", "tiny-wan2.2": "wan2.2"}


def smoke_config(name: str):
    return load_config("smoke", {"backbone": name, "video.frames": FRAMES, "video.height": SIZE, "video.width": SIZE,
                                 "sample.steps": 2, "lora.rank": 8, "lora.alpha": 16, "lora.targets": "qkvo-ff",
                                 "train.lr": 1e-2})


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    """name -> (the tiny backbone, its saved pipeline folder, two training videos), each built once per module."""
    built = {}

    def get(name):
        if name not in built:
            backbone = load_backbone(name, device="cpu")
            pipe_dir = tmp_path_factory.mktemp(f"{name}-pipeline")
            backbone.pipe.save_pretrained(pipe_dir)
            built[name] = backbone, pipe_dir, [transition_video(seed, FRAMES, SIZE) for seed in (0, 1)]
        return built[name]

    return get


def text_embeds(pipe, prompt: str) -> torch.Tensor:
    return pipe.encode_prompt(prompt, do_classifier_free_guidance=False, max_sequence_length=512)[0]


def normalised(pipe, latents: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1)
    return (latents - mean) / std


def first_frames(videos, indices) -> tuple[list[np.ndarray], torch.Tensor]:
    """The first frames of these videos as pictures and as [B, 3, 1, H, W] in [-1, 1]."""
    firsts = [videos[i][0] for i in indices]
    pixels = torch.stack([torch.from_numpy(f) for f in firsts]).permute(0, 3, 1, 2)[:, :, None].float() / 127.5 - 1
    return firsts, pixels


@pytest.mark.parametrize("name", NAMES)
def test_an_arcvdm_adapter_loads_into_the_stock_pipeline_and_generate_equals_it(setups, name, tmp_path):
    from diffusers import WanImageToVideoPipeline

    backbone, pipe_dir, videos = setups(name)
    config = smoke_config(name)
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(3, progress=False)
    first = videos[0][0]
    ours = ours_last_frame(backbone, first, config, seed=7)
    trainer.save_adapter(tmp_path)

    stock = WanImageToVideoPipeline.from_pretrained(pipe_dir)
    stock.set_progress_bar_config(disable=True)
    base = stock_last_frame(stock, first, config, seed=7)
    stock.load_lora_weights(tmp_path)
    theirs = stock_last_frame(stock, first, config, seed=7)
    assert np.abs(theirs - ours).max() <= 1e-5
    assert np.abs(theirs - base).max() > 1e-3  # the adapter changes the stock pipeline's output


@pytest.mark.parametrize("name", NAMES)
def test_qkvo_ff_wraps_self_and_cross_attention_and_the_feed_forward(setups, name):
    backbone, _, videos = setups(name)
    LoraTrainer(backbone, videos[:1], smoke_config(name))
    wrapped = {n.removeprefix("blocks.0.").split(".lora_A")[0]
               for n, _ in backbone.transformer.named_parameters() if ".lora_A." in n}
    assert wrapped == {f"attn{i}.{m}" for i in (1, 2) for m in ("to_q", "to_k", "to_v", "to_out.0")} | \
        {"ffn.net.0.proj", "ffn.net.2"}


def loss_after_training(setups, name, sigma_sampling="shifted-uniform"):
    """(backbone, videos, config, encoded rows, the draw, arcvdm's loss) one step after a 2-step adapter."""
    backbone, _, videos = setups(name)
    config = smoke_config(name)
    config = config.model_copy(update={"train": config.train.model_copy(update={"sigma_sampling": sigma_sampling})})
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(2, progress=False)  # a non-zero adapter
    indices, draw = trainer.draw_batch()
    with torch.no_grad():
        ours = trainer.loss(indices, draw).item()
    return backbone, videos, config, trainer.batch(indices), indices, draw, ours


@pytest.mark.parametrize(("sigma_sampling", "median"), [("shifted-uniform", 0.75), ("logit-normal", 0.5)])
def test_the_loss_equals_an_independent_wan_i2v_objective(setups, sigma_sampling, median):
    """Wan2.1 flow matching written out from the draw: the conditioning rebuilt from the first frame as the pipeline
    builds it (first frame + zero frames, VAE mode, normalised, behind 4 mask channels), CLIP penultimate hidden
    states, x_t = (1 - sigma) x_0 + sigma noise, target noise - x_0, timestep 1000 sigma; under either sigma draw."""
    backbone, videos, config, batch, indices, draw, ours = loss_after_training(setups, "tiny-wan", sigma_sampling)
    pipe = backbone.pipe
    with torch.no_grad():
        x0 = batch["latents"]
        firsts, pixels = first_frames(videos, indices)
        video_condition = torch.cat([pixels, torch.zeros(len(firsts), 3, FRAMES - 1, SIZE, SIZE)], dim=2)
        image_latents = normalised(pipe, pipe.vae.encode(video_condition).latent_dist.mode())
        mask = torch.zeros(len(firsts), 4, *image_latents.shape[2:])
        mask[:, :, 0] = 1  # the first frame's 4 temporally compressed slots are known, the rest are not
        clip = pipe.image_processor(images=[Image.fromarray(f) for f in firsts], return_tensors="pt")
        image_embeds = pipe.image_encoder(**clip, output_hidden_states=True).hidden_states[-2]
        sigma = draw["sigmas"].view(-1, 1, 1, 1, 1)
        noisy = (1 - sigma) * x0 + sigma * draw["noise"]
        prediction = backbone.transformer(hidden_states=torch.cat([noisy, mask, image_latents], dim=1),
                                          timestep=draw["sigmas"] * 1000,
                                          encoder_hidden_states=text_embeds(pipe, config.prompt).expand(2, -1, -1),
                                          encoder_hidden_states_image=image_embeds).sample
        theirs = ((prediction - (draw["noise"] - x0)) ** 2).mean().item()
    assert ours == pytest.approx(theirs, rel=1e-5)
    # shifted-uniform follows the shipped sampler's shift (3.0 for 480P): median 0.75; logit-normal is finetrainers'
    # sigmoid(N(0, 1)) on its 1000-step table: median 0.5, every sigma a multiple of 1/1000
    many = backbone.draw_noise({"latents": torch.zeros(4000, 1)}, torch.Generator().manual_seed(0))["sigmas"]
    assert many.median().item() == pytest.approx(median, abs=0.02)
    on_table = torch.allclose(many * 1000, torch.round(many * 1000), atol=1e-3)
    assert on_table == (sigma_sampling == "logit-normal")


def test_the_loss_equals_an_independent_wan22_ti2v_objective(setups):
    """Wan2.2 TI2V written out from the draw: the first frame alone VAE-encoded (mode, normalised) replaces the first
    noisy latent frame, its tokens get timestep 0 and the others 1000 sigma, and the first frame leaves the loss."""
    backbone, videos, config, batch, indices, draw, ours = loss_after_training(setups, "tiny-wan2.2")
    pipe = backbone.pipe
    with torch.no_grad():
        x0 = batch["latents"]
        _, pixels = first_frames(videos, indices)
        condition = normalised(pipe, pipe.vae.encode(pixels).latent_dist.mode())
        sigma = draw["sigmas"].view(-1, 1, 1, 1, 1)
        noisy = (1 - sigma) * x0 + sigma * draw["noise"]
        noisy[:, :, :1] = condition
        f, h, w = x0.shape[2:]
        per_frame = (h // 2) * (w // 2)  # patch 1 x 2 x 2
        timestep = (draw["sigmas"] * 1000)[:, None].repeat(1, f * per_frame)
        timestep[:, :per_frame] = 0
        prediction = backbone.transformer(hidden_states=noisy, timestep=timestep,
                                          encoder_hidden_states=text_embeds(pipe, config.prompt).expand(2, -1, -1)).sample
        theirs = ((prediction - (draw["noise"] - x0))[:, :, 1:] ** 2).mean().item()
    assert ours == pytest.approx(theirs, rel=1e-5)
    many = backbone.draw_noise({"latents": torch.zeros(4000, 1)}, torch.Generator().manual_seed(0))
    assert many["sigmas"].median().item() == pytest.approx(5 / 6, abs=0.02)  # TI2V-5B ships shift 5.0


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_folder_loads_as_its_family(setups, name):
    backbone, pipe_dir, _ = setups(name)
    backbone.reset_lora()
    assert family_of(str(pipe_dir)) == FAMILY[name]
    loaded = load_backbone(str(pipe_dir), device="cpu")
    assert type(loaded) is type(backbone) and type(loaded.pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    prompt = smoke_config(name).prompt
    torch.testing.assert_close(loaded.prompt_embeds(prompt), backbone.prompt_embeds(prompt))
    if name == "tiny-wan2.2":  # TI2V weights saved as the text-to-video class still load as image-to-video
        index = json.loads((pipe_dir / "model_index.json").read_text())
        (pipe_dir / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
        loaded = load_backbone(str(pipe_dir), device="cpu")
        assert type(loaded) is type(backbone) and type(loaded.pipe).__name__ == "WanImageToVideoPipeline"
        assert loaded.pipe.config.expand_timesteps
        (pipe_dir / "model_index.json").write_text(json.dumps(index))


def test_the_euler_sampler_keeps_the_shipped_shift_and_unipc_comes_back_unchanged(setups):
    backbone, _, videos = setups("tiny-wan")
    backbone.reset_lora()
    unipc = smoke_config("tiny-wan")
    euler = unipc.model_copy(update={"sample": unipc.sample.model_copy(update={"scheduler": "euler"})})
    first = videos[0][0]
    before = ours_last_frame(backbone, first, unipc, seed=3)
    with_euler = ours_last_frame(backbone, first, euler, seed=3)
    assert type(backbone.pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert backbone.pipe.scheduler.config.shift == 3.0 and np.abs(with_euler - before).max() > 1e-4
    np.testing.assert_allclose(ours_last_frame(backbone, first, unipc, seed=3), before, atol=1e-6)
    assert check_config(load_config("smoke", {"backbone": "tiny-wan", "sample.scheduler": "euler"})).sample.scheduler == \
        "FlowMatchEulerDiscreteScheduler"


def test_wan_folders_sharing_a_pipeline_class_are_told_apart(tmp_path):
    def folder(name, **index):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model_index.json").write_text(json.dumps(index))
        return str(tmp_path / name)

    assert family_of(folder("i2v", _class_name="WanImageToVideoPipeline",
                            image_encoder=["transformers", "CLIPVisionModel"])) == "wan"
    # TI2V-5B: one set of weights for text- and image-to-video, saved under either class, with expand_timesteps
    assert family_of(folder("ti2v", _class_name="WanImageToVideoPipeline", expand_timesteps=True)) == "wan2.2"
    assert family_of(folder("ti2v-t2v", _class_name="WanPipeline", expand_timesteps=True)) == "wan2.2"
    with pytest.raises(ArcvdmError, match="pipeline class 'WanPipeline' is not an image-to-video family"):
        family_of(folder("t2v", _class_name="WanPipeline", expand_timesteps=False))  # Wan2.1 text-to-video


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [("tiny-wan", {"video.frames": 8}, r"video.frames = 8: Wan2.1 I2V needs F = 4k\+1 frames .*nearest: 5 or 9"),
     ("tiny-wan", {"video.height": 72}, r"video.height = 72: Wan2.1 I2V needs a positive multiple of 16 \(nearest: 64 or 80\)"),
     ("tiny-wan2.2", {"video.frames": 12}, r"video.frames = 12: Wan2.2 TI2V needs F = 4k\+1 frames .*nearest: 9 or 13"),
     ("tiny-wan2.2", {"video.width": 48}, r"video.width = 48: Wan2.2 TI2V needs a positive multiple of 32 \(nearest: 32 or 64\)")],
)
def test_wrong_shapes_are_one_line_errors_before_any_model_loads(name, overrides, message, tmp_path, samples_dir,
                                                                 monkeypatch, capsys):
    import arcvdm.backbones
    from arcvdm.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(arcvdm.backbones, "load_backbone", no_model)
    with pytest.raises(ArcvdmError, match=message):
        check_config(load_config("smoke", {"backbone": name, **overrides}))
    (key, value), = overrides.items()
    monkeypatch.setattr("sys.argv", ["arcvdm", "run", str(samples_dir), "--backbone", name, "--preset", "smoke",
                                     "--out", str(tmp_path / "run"), f"--{key.split('.')[1]}", str(value)])
    with pytest.raises(SystemExit) as exit_:
        main()
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(error.splitlines()) == 1 and re.search(message, error)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", NAMES)
def test_arc_run_end_to_end(name, tmp_path, samples_dir):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--backbone", name, "--preset", "smoke",
                                      "--tasks", "flip-h", "--steps", "2", "--eval-every", "1", "--sample-steps", "1",
                                      "--frames", "5", "--height", "32", "--width", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 problem: 1 done" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == name and config["sample"]["scheduler"] == "UniPCMultistepScheduler"
    record = json.loads((out / "problems" / "flip-h.json").read_text())
    assert record["status"] == "done" and record["forward_flops"] > 0 and "attempt_1" in record["attempts"][0]


@pytest.mark.parametrize("name", NAMES)
def test_vision_run_end_to_end(name, tmp_path):
    out = tmp_path / "seg"
    result = CliRunner().invoke(app, ["vision", "run", "binary-segmentation", "--data", "synthetic", "--shots", "2",
                                      "--seeds", "1", "--eval", "1", "--preset", "vision-smoke", "--backbone", name,
                                      "--frames", "5", "--height", "32", "--width", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "problems" / "binary-segmentation-n2-seed0.json").read_text())
    assert record["status"] == "done" and 0.0 <= record["metrics"]["miou"] <= 1.0
    assert json.loads((out / "config.json").read_text())["backbone"] == name


def test_paper_wan_is_the_table_3_recipe_for_arc_and_the_vision_suite():
    from arcvdm.vision.families import FAMILIES
    from arcvdm.vision.presets import vision_config

    arc = load_config("paper-wan")
    vision = vision_config("paper-wan", FAMILIES.get("binary-segmentation"), 30, {"backbone": None})
    for config in map(check_config, (arc, vision)):
        assert config.backbone == "wan2.1-i2v-14b-480p"
        assert (config.video.frames, config.video.height, config.video.width, config.video.trajectory) == (9, 480, 720, "linear")
        assert (config.lora.rank, config.lora.alpha, config.lora.targets) == (128, 128, "qkvo-ff")
        t = config.train
        assert (t.steps, t.eval_every, t.lr, t.betas, t.weight_decay, t.batch_size, t.warmup_steps) == \
            (4000, 1000, 2e-5, (0.9, 0.99), 1e-4, 1, 1000)
        assert (t.sigma_sampling, t.first_frame, t.gradient_checkpointing) == ("logit-normal", None, True)
        assert config.sample.guidance_scale == 1.0 and config.sample.scheduler == "UniPCMultistepScheduler"
    assert vision.family == "binary-segmentation" and vision.preset == "paper-wan"


@pytest.mark.parametrize("name", NAMES)
def test_in_bf16_the_vae_and_image_encoder_stay_fp32_as_the_stock_example_loads_them(name, setups):
    """bf16 backbone: VAE and CLIP image encoder in fp32, the transformer's `_keep_in_fp32_modules` in fp32 (no
    blanket `.to(dtype)`, so no diffusers warning about them), the rest in bf16; a training step and a video run."""
    import logging

    from diffusers.utils import logging as diffusers_logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    diffusers_logging.get_logger("diffusers").addHandler(handler)
    try:
        backbone = load_backbone(name, device="cpu", dtype="bf16")
    finally:
        diffusers_logging.get_logger("diffusers").removeHandler(handler)
    assert not [r for r in records if "kept in float32" in r.getMessage()]
    pipe, keep = backbone.pipe, backbone.transformer._keep_in_fp32_modules
    assert {p.dtype for p in pipe.vae.parameters()} == {torch.float32}
    if name == "tiny-wan":
        assert {p.dtype for p in pipe.image_encoder.parameters()} == {torch.float32}
    for param_name, param in backbone.transformer.named_parameters():
        kept = any(k in param_name.split(".") for k in keep)
        assert param.dtype == (torch.float32 if kept else torch.bfloat16), param_name
    assert {p.dtype for p in pipe.text_encoder.parameters()} == {torch.bfloat16}
    _, _, videos = setups(name)
    config = smoke_config(name).model_copy(update={"dtype": "bf16"})
    trainer = LoraTrainer(backbone, videos[:1], config)
    assert np.isfinite(trainer.train(1, progress=False)[0])
    assert np.isfinite(ours_last_frame(backbone, videos[0][0], config, seed=1)).all()


def test_the_full_size_models_are_counted_on_meta():
    # Wan2.1-I2V-14B-480P: 16.4 B transformer parameters (image cross-attention included); 9x480x720 is
    # 3 latent frames x 30 x 45 patches = 4,050 video tokens + 512 text + 257 image tokens.
    wan21 = load_backbone("wan2.1-i2v-14b-480p-random", device="meta")
    assert sum(p.numel() for p in wan21.transformer.parameters()) == pytest.approx(16.39e9, rel=0.01)
    assert wan21.forward_flops(9, 480, 720) == pytest.approx(116.1e12, rel=0.01)
    assert wan21.prompt_embeds("any")["prompt_embeds"].shape == (1, 512, 4096)
    # Wan2.2 TI2V-5B: 5.0 B parameters; 9x480x704 is 3 latent frames x 15 x 22 patches = 990 video + 512 text tokens.
    ti2v = load_backbone("wan2.2-ti2v-5b-random", device="meta")
    assert sum(p.numel() for p in ti2v.transformer.parameters()) == pytest.approx(5.0e9, rel=0.01)
    assert ti2v.forward_flops(9, 480, 704) == pytest.approx(9.88e12, rel=0.01)
