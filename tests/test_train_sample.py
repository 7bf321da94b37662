"""LoRA training objective, sampling and adapter files on the tiny backbone: `python -m pytest tests/test_train_sample.py -q`."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from arcvdm.backbones import load_backbone
from arcvdm.config import load_config
from arcvdm.sample import generate, predicted_frames, read_out
from arcvdm.errors import ArcvdmError
from arcvdm.train import ADAPTER_FILE, LoraTrainer

SIZE = 32


def transition_video(seed: int, frames: int = 9, size: int = SIZE) -> np.ndarray:
    """A square of one colour that moves across a dark background: first and last frames differ."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(64, 256, 3, dtype=np.uint8)
    video = np.zeros((frames, size, size, 3), np.uint8)
    for f in range(frames):
        x = f * (size - 8) // (frames - 1)
        video[f, 8:16, x : x + 8] = colour
    return video


@pytest.fixture(scope="module")
def config():
    return load_config("smoke", {"video.height": SIZE, "video.width": SIZE, "sample.steps": 2, "sample.batch_size": 2,
                                 "lora.rank": 8, "lora.alpha": 16, "train.lr": 1e-2})


@pytest.fixture(scope="module")
def setup(tmp_path_factory, config):
    """The tiny backbone, its saved pipeline folder, two training videos and the base model's samples."""
    backbone = load_backbone("tiny", device="cpu")
    pipe_dir = tmp_path_factory.mktemp("tiny-pipeline")
    backbone.pipe.save_pretrained(pipe_dir)
    videos = [transition_video(0), transition_video(1)]
    base = generate(backbone, [v[0] for v in videos], config, seed=7)
    return backbone, pipe_dir, videos, base


def test_overfitting_one_fixed_example_lowers_the_loss(setup, config):
    backbone, _, videos, _ = setup
    trainer = LoraTrainer(backbone, videos[:1], config)
    indices = torch.tensor([0, 0])
    draw = backbone.draw_noise(trainer.batch(indices), torch.Generator().manual_seed(0))
    draw["timesteps"] = torch.tensor([500, 700])
    losses = [trainer.train_step(indices, draw) for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0]
    assert trainer.step == 30


def test_only_lora_parameters_train(setup, config):
    backbone, _, videos, _ = setup
    trainer = LoraTrainer(backbone, videos, config)
    names = [n for n, p in backbone.transformer.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert all(p.dtype == torch.float32 for p in trainer.params)
    frozen = {n: p.detach().clone() for n, p in backbone.transformer.named_parameters() if not p.requires_grad}
    trainer.train(2, progress=False)
    assert all(torch.equal(p, frozen[n]) for n, p in backbone.transformer.named_parameters() if not p.requires_grad)


@pytest.mark.parametrize(
    ("targets", "wrapped"),
    [("qk", {"attn1.to_q", "attn1.to_k"}), ("vo", {"attn1.to_v", "attn1.to_out.0"}),
     ("block-linear", {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2",
                       "norm1.linear", "norm2.linear"}),
     ("all-linear", {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2",
                     "norm1.linear", "norm2.linear", "patch_embed.proj", "patch_embed.text_proj", "time_embedding.linear_1",
                     "time_embedding.linear_2", "ofs_embedding.linear_1", "ofs_embedding.linear_2", "norm_out.linear",
                     "proj_out"})],  # peft's own all-linear: the embeddings and the output head too
)
def test_lora_target_sets(setup, config, targets, wrapped):
    backbone, _, videos, _ = setup
    lora = config.lora.model_copy(update={"targets": targets})
    LoraTrainer(backbone, videos[:1], config.model_copy(update={"lora": lora}))
    names = {n.removeprefix("transformer_blocks.0.").split(".lora_A")[0]
             for n, _ in backbone.transformer.named_parameters() if ".lora_A." in n}
    assert names == wrapped


def test_training_is_reproducible(setup, config):
    backbone, _, videos, _ = setup
    first = LoraTrainer(backbone, videos, config).train(2, progress=False)
    assert LoraTrainer(backbone, videos, config).train(2, progress=False) == first


def test_the_latents_follow_the_pipeline_layout(setup, config):
    backbone, _, videos, _ = setup
    trainer = LoraTrainer(backbone, videos, config)
    latents = trainer.encoded["latents"]
    # 9 frames -> 3 latent frames, padded to 4 by repeating the first; image latents: the image, then zeros.
    assert latents.shape == (2, 4, 4, SIZE // 8, SIZE // 8)
    assert torch.equal(latents[:, 0], latents[:, 1])
    draw = trainer.draw_batch()[1]
    image = backbone.image_latents(trainer.encoded["first_frames"], draw, padded=4)
    assert image.shape == latents.shape
    assert image[:, 0].abs().sum() > 0 and not image[:, 1:].any()


def test_the_first_frame_noise_is_redrawn_every_step(setup, config):
    """The official trainer noises and encodes the conditioning image at every step, not once per video."""
    backbone, _, videos, _ = setup
    trainer = LoraTrainer(backbone, videos[:1], config)
    first = trainer.encoded["first_frames"][[0, 0]]
    one, two = trainer.draw_batch()[1], trainer.draw_batch()[1]
    assert not torch.equal(one["image_sigma"], two["image_sigma"])
    assert not torch.allclose(backbone.image_latents(first, one, 4), backbone.image_latents(first, two, 4))


def test_the_loss_equals_an_independent_cogvideox_objective(setup, config):
    """The official CogVideoX I2V objective written out from the draw, with the stock scheduler formulas."""
    backbone, _, videos, _ = setup
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(2, progress=False)  # a non-zero adapter
    indices, draw = trainer.draw_batch()
    with torch.no_grad():
        ours = trainer.loss(indices, draw).item()
        vae, scheduler, transformer = backbone.pipe.vae, backbone.pipe.scheduler, backbone.transformer
        x0 = trainer.encoded["latents"][indices]
        first = torch.stack([torch.from_numpy(videos[i][0]) for i in indices]).permute(0, 3, 1, 2)[:, :, None]
        first = first.float() / 127.5 - 1 + draw["image_sigma"].view(-1, 1, 1, 1, 1) * draw["image_noise"]
        posterior = vae.encode(first).latent_dist
        image = ((posterior.mean + posterior.std * draw["image_posterior"]) / vae.config.scaling_factor).transpose(1, 2)
        image = torch.cat([image, torch.zeros_like(image).repeat(1, 3, 1, 1, 1)], dim=1)
        abar = scheduler.alphas_cumprod[draw["timesteps"]].view(-1, 1, 1, 1, 1).float()
        noisy = abar.sqrt() * x0 + (1 - abar).sqrt() * draw["noise"]
        velocity = abar.sqrt() * draw["noise"] - (1 - abar).sqrt() * x0
        rotary = backbone.pipe._prepare_rotary_positional_embeddings(SIZE, SIZE, 4, "cpu")
        prediction = transformer(hidden_states=torch.cat([noisy, image], dim=2),
                                 encoder_hidden_states=backbone.pipe.encode_prompt(config.prompt, do_classifier_free_guidance=False)[0].expand(2, -1, -1),
                                 timestep=draw["timesteps"], ofs=torch.tensor([2.0]), image_rotary_emb=rotary).sample
        theirs = ((prediction - velocity) ** 2).mean().item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_train_then_sample_shapes_range_and_determinism(setup, config):
    backbone, _, videos, base = setup
    trainer = LoraTrainer(backbone, videos, config)
    losses = trainer.train(3, progress=False)
    assert len(losses) == 3 and trainer.step == 3 and all(np.isfinite(losses))
    assert len(trainer.train(2, progress=False)) == 2 and trainer.step == 5
    first = [v[0] for v in videos] + [videos[0][0]]
    out = generate(backbone, first, config, seed=7)
    assert out.shape == (3, 9, SIZE, SIZE, 3) and out.dtype == np.uint8
    assert np.array_equal(out, generate(backbone, first, config, seed=7))
    assert not np.array_equal(out, generate(backbone, first, config, seed=8))
    assert np.array_equal(predicted_frames(backbone, first, config, seed=7), out[:, -1])
    held = config.model_copy(update={"sample": config.sample.model_copy(update={"readout": "target-frames"})})
    assert backbone.temporal_compression == 4  # discrete, 9 frames: 4-8 show the target, 5-8 decode from the last latent
    mean = np.round(out[:, 5:].astype(np.float32).mean(axis=1)).astype(np.uint8)
    assert np.array_equal(predicted_frames(backbone, first, held, seed=7), mean) and not np.array_equal(mean, out[:, -1])
    assert np.abs(out[:2].astype(int) - base).max() > 0  # the adapter changed the model


@pytest.mark.parametrize("trajectory, frames, compression, averaged", [
    ("discrete", 9, 4, [5, 6, 7, 8]),  # 4-8 show the target; 4 decodes from the latent of frames 1-4
    ("discrete", 17, 8, list(range(9, 17))),  # an x8 temporal VAE (LTX-Video)
    ("discrete", 9, 8, [4, 5, 6, 7, 8]),  # one latent holds frames 1-8: every target frame
    ("linear", 9, 4, [8]),
    ("tiles", 9, 4, [8]),
])
def test_target_frames_readout_averages_the_last_latents_target_frames(trajectory, frames, compression, averaged):
    videos = np.random.default_rng(0).integers(0, 256, (2, frames, 4, 4, 3), dtype=np.uint8)
    config = load_config("smoke", {"video.trajectory": trajectory, "video.frames": frames})
    assert np.array_equal(read_out(videos, config, compression), videos[:, -1])  # the paper's readout
    config = load_config("smoke", {"video.trajectory": trajectory, "video.frames": frames, "sample.readout": "target-frames"})
    expected = np.round(videos[:, averaged].astype(np.float32).mean(axis=1)).astype(np.uint8)
    assert np.array_equal(read_out(videos, config, compression), expected)


def test_saved_adapter_loads_into_a_stock_pipeline(setup, config, tmp_path):
    from diffusers import CogVideoXImageToVideoPipeline

    backbone, pipe_dir, videos, base = setup
    trainer = LoraTrainer(backbone, videos, config)
    trainer.train(5, progress=False)
    image = torch.from_numpy(videos[0][0]).permute(2, 0, 1)[None].float() / 255
    ours_float = backbone.generate(image, backbone.prompt_embeds(config.prompt), config, [torch.Generator().manual_seed(7)])[0]
    ours = generate(backbone, [videos[0][0]], config, seed=7)[0]
    assert np.array_equal(ours, np.clip(np.round(ours_float * 255), 0, 255).astype(np.uint8))
    path = trainer.save_adapter(tmp_path)
    assert path.name == ADAPTER_FILE
    assert all(key.startswith("transformer.") and "lora_" in key for key in load_file(path))

    stock = CogVideoXImageToVideoPipeline.from_pretrained(pipe_dir)
    stock.load_lora_weights(tmp_path)
    frames = stock(image=image, prompt=config.prompt, height=SIZE, width=SIZE, num_frames=9, num_inference_steps=2,
                   guidance_scale=1.0, generator=torch.Generator().manual_seed(7), output_type="np").frames[0]
    assert np.abs(frames[-1] - ours_float[-1]).max() <= 1e-5  # the last frame, before rounding (a reload: ~1e-6)
    theirs = np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)
    assert np.abs(theirs.astype(int) - base[0]).max() > 1  # the adapter changed the stock pipeline's output


def test_reset_lora_restores_the_base_model(setup, config):
    backbone, _, videos, base = setup
    LoraTrainer(backbone, videos, config).train(3, progress=False)
    backbone.reset_lora()
    assert not any(p.requires_grad for p in backbone.transformer.parameters())
    assert np.array_equal(generate(backbone, [v[0] for v in videos], config, seed=7), base)


def row_losses(trainer, rows, seed=0):
    """The loss of each encoded video at the same fixed noise and timesteps."""
    draw = trainer.backbone.draw_noise(trainer.batch(torch.tensor([0] * 4)), torch.Generator().manual_seed(seed))
    draw["timesteps"] = torch.tensor([200, 400, 600, 800])
    with torch.no_grad():
        return [trainer.loss(torch.tensor([r] * 4), draw).item() for r in rows]


def test_training_on_some_rows_fits_those_videos_more_than_the_others(setup, config):
    backbone, _, videos, _ = setup
    stripes = np.zeros_like(videos[0])
    stripes[:, :, ::4] = 255  # unlike the moving square: little of one fit carries over to the other
    for trained, other in [(0, 1), (1, 0)]:  # both ways round, so neither video's own difficulty decides
        trainer = LoraTrainer(backbone, [videos[0], stripes], config)
        before = row_losses(trainer, [trained, other])
        trainer.train(30, progress=False, rows=[trained])
        after = row_losses(trainer, [trained, other])
        assert after[0] / before[0] < 0.95 * (after[1] / before[1])


def test_rows_choose_the_drawn_videos_deterministically(setup, config):
    backbone, _, videos, _ = setup
    three = videos + [transition_video(2)]
    trainer = LoraTrainer(backbone, three, config)
    trainer.use_rows([0, 2])
    drawn = {int(i) for _ in range(6) for i in trainer.draw_batch()[0]}
    assert drawn == {0, 2}
    trainer.use_rows(None)
    assert trainer.rows == (0, 1, 2)
    with pytest.raises(ArcvdmError, match="distinct indices of the 3 encoded videos"):
        trainer.use_rows([0, 3])
    with pytest.raises(ArcvdmError, match="distinct indices"):
        trainer.use_rows([])

    def chunks():
        t = LoraTrainer(backbone, three, config)
        return t.train(2, progress=False, rows=[1, 2]) + t.train(2, progress=False) + t.train(1, progress=False, rows=[0])

    assert chunks() == chunks()  # a repeated run draws the same batches
    # all rows spelled out is the default: the same epochs as a trainer that never chose rows
    assert LoraTrainer(backbone, three, config).train(3, progress=False, rows=[0, 1, 2]) == \
        LoraTrainer(backbone, three, config).train(3, progress=False)


def test_compiled_training_and_sampling_match_eager(setup, config, monkeypatch):
    """train.compile gives eager's losses and videos, for a first adapter and for a fresh one after reset_lora.

    The aot_eager backend runs torch.compile's capture (dynamo, AOT autograd through peft's LoRA layers) without
    inductor's C++ code generation, which takes minutes on a CPU; `arcvdm bench train --compile` measures inductor.
    """
    monkeypatch.setattr("arcvdm.backbones.base.COMPILE_BACKEND", "aot_eager")
    backbone, _, videos, _ = setup
    compiled = config.model_copy(update={"train": config.train.model_copy(update={"compile": True})})
    eager_losses = LoraTrainer(backbone, videos, config).train(3, progress=False)
    eager_video = generate(backbone, [videos[0][0]], config)
    torch._dynamo.reset()
    try:
        for _ in range(2):  # the second problem: the adapter removed and a new one added under the compiled module
            trainer = LoraTrainer(backbone, videos, compiled)
            np.testing.assert_allclose(trainer.train(3, progress=False), eager_losses, rtol=1e-4)
        video = generate(backbone, [videos[0][0]], compiled)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "the transformer ran through torch.compile"
        assert np.abs(video.astype(int) - eager_video.astype(int)).max() <= 1
    finally:
        backbone.use_compile(False)
    assert backbone.transformer._compiled_call_impl is None


def test_lora_weights_train_in_fp32_on_a_bf16_backbone(config):
    backbone = load_backbone("tiny", device="cpu", dtype="bf16")
    trainer = LoraTrainer(backbone, [transition_video(0)], config)
    weights = dict(backbone.transformer.named_parameters())
    lora = {n: p for n, p in weights.items() if "lora_" in n}
    assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora.values())
    assert all(p.dtype == torch.bfloat16 for n, p in weights.items() if n not in lora)
    before = {n: p.detach().clone() for n, p in lora.items()}
    assert np.isfinite(trainer.train(2, progress=False)).all()
    assert any(not torch.equal(before[n], p) for n, p in lora.items()), "the fp32 LoRA weights were updated"
