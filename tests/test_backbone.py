"""Backbone loading, shape checks and FLOP counts: `python -m pytest tests/test_backbone.py -q`."""

import numpy as np
import pytest
import torch

from arcvdm.backbones import BACKBONES, check_config, load_backbone
from arcvdm.config import VideoConfig, load_config
from arcvdm.device import pick_device, pick_dtype
from arcvdm.errors import ArcvdmError
from arcvdm.sample import generate
from arcvdm.train import LoraTrainer


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny", device="cpu")


def test_registry_names_the_three_backbones():
    assert {"tiny", "cogvideox1.5-5b-i2v", "cogvideox1.5-5b-i2v-random"} <= set(BACKBONES.names())


def test_unknown_name_suggests_a_registered_one():
    with pytest.raises(ArcvdmError, match="Did you mean 'tiny'"):
        load_backbone("tinny", device="cpu")


def test_device_and_dtype_defaults_and_overrides():
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cuda")) == torch.bfloat16
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ArcvdmError, match="dtype 'fp8'"):
        pick_dtype(torch.device("cpu"), "fp8")


@pytest.mark.parametrize(
    ("frames", "height", "width", "message"),
    [(8, 32, 32, "8k\\+1"), (10, 32, 32, "8k\\+1"), (9, 40, 32, "video.height = 40"), (9, 32, 24, "video.width = 24")],
)
def test_bad_video_shapes_are_refused_up_front(tiny, frames, height, width, message):
    with pytest.raises(ArcvdmError, match=message):
        tiny.check_video_shape(frames, height, width)
    with pytest.raises(ArcvdmError, match=message):  # a config with such a shape does not load
        check_config(load_config("smoke", {"video.frames": frames, "video.height": height, "video.width": width}))
    video = VideoConfig.model_construct(frames=frames, height=height, width=width, trajectory="discrete")
    config = load_config("smoke").model_copy(update={"video": video})  # built by hand, skipping validation
    with pytest.raises(ArcvdmError, match=message):
        generate(tiny, [np.zeros((height, width, 3), np.uint8)], config)


def test_videos_that_disagree_with_the_config_are_refused(tiny):
    config = load_config("smoke", {"video.height": 32, "video.width": 32})
    with pytest.raises(ArcvdmError, match="lora.targets: Input should be 'qk', 'vo', 'qkvo', 'qkvo-ff', 'block-linear' or 'all-linear'"):
        load_config("smoke", {"lora.targets": "qv"})
    with pytest.raises(ArcvdmError, match="training video 0 is uint8 \\(9, 64, 64, 3\\)"):
        LoraTrainer(tiny, [np.zeros((9, 64, 64, 3), np.uint8)], config)
    with pytest.raises(ArcvdmError, match="first frame 0 is float64"):
        generate(tiny, [np.zeros((32, 32, 3))], config)


def test_tiny_is_the_same_on_every_build(tiny):
    again = load_backbone("tiny", device="cpu")
    for a, b in zip(tiny.transformer.state_dict().values(), again.transformer.state_dict().values()):
        assert torch.equal(a, b)


def test_real_loader_reads_a_saved_pipeline_folder(tiny, tmp_path):
    tiny.reset_lora()
    tiny.pipe.save_pretrained(tmp_path)
    loaded = load_backbone(str(tmp_path), device="cpu")
    assert loaded.name == str(tmp_path)
    for name, weight in tiny.transformer.state_dict().items():
        torch.testing.assert_close(loaded.transformer.state_dict()[name], weight)
    prompt = load_config("smoke").prompt
    torch.testing.assert_close(loaded.prompt_embeds(prompt), tiny.prompt_embeds(prompt), atol=1e-4, rtol=0)
    assert type(loaded.pipe.scheduler).__name__ == "CogVideoXDPMScheduler"


def test_a_folder_without_a_pipeline_is_refused(tmp_path):
    with pytest.raises(ArcvdmError, match="no model_index.json"):
        load_backbone(str(tmp_path), device="cpu")


def test_random_5b_counts_the_real_models_flops_without_allocating():
    # The real transformer at 9x480x480: 1,800 video + 226 text tokens, about 21.4 TFLOP per forward.
    big = load_backbone("cogvideox1.5-5b-i2v-random", device="meta")
    assert sum(p.numel() for p in big.transformer.parameters()) == pytest.approx(5.57e9, rel=0.01)
    assert big.forward_flops(9, 480, 480) == pytest.approx(21.4e12, rel=0.01)
    assert big.prompt_embeds("any")["prompt_embeds"].shape == (1, 226, 4096)


def test_forward_flops_grow_with_the_video(tiny):
    assert tiny.forward_flops(9, 64, 64) > tiny.forward_flops(9, 32, 32) > 0


def test_shape_errors_name_the_nearest_valid_values():
    with pytest.raises(ArcvdmError, match=r"video.frames = 12: CogVideoX1.5 needs F = 8k\+1 .*nearest: 9 or 17"):
        check_config(load_config("smoke", {"video.frames": 12}))
    with pytest.raises(ArcvdmError, match=r"video.height = 72: .*multiple of 16 \(nearest: 64 or 80\)"):
        check_config(load_config("smoke", {"video.height": 72}))


def test_the_scheduler_class_is_resolved_and_recorded_in_the_config(tiny):
    assert check_config(load_config("smoke")).sample.scheduler == "CogVideoXDPMScheduler"
    config = check_config(load_config("smoke", {"sample.scheduler": "ddim", "video.height": 32, "video.width": 32,
                                                "sample.steps": 2}))
    assert config.sample.scheduler == "CogVideoXDDIMScheduler"
    assert "CogVideoXDDIMScheduler" in config.model_dump_json()
    with pytest.raises(ArcvdmError, match="sample.scheduler = 'euler' is not a CogVideoX1.5 scheduler"):
        check_config(load_config("smoke", {"sample.scheduler": "euler"}))
    frame = [np.full((32, 32, 3), 90, np.uint8)]
    ddim = generate(tiny, frame, config, seed=3)
    assert type(tiny.pipe.scheduler).__name__ == "CogVideoXDDIMScheduler"
    dpm = generate(tiny, frame, config.model_copy(update={"sample": config.sample.model_copy(update={"scheduler": "dpm"})}), seed=3)
    assert type(tiny.pipe.scheduler).__name__ == "CogVideoXDPMScheduler"
    assert not np.array_equal(ddim, dpm)


def test_warmup_ramps_the_learning_rate_linearly(tiny):
    config = load_config("smoke", {"video.height": 32, "video.width": 32, "train.warmup_steps": 4, "train.lr": 1e-3})
    trainer = LoraTrainer(tiny, [np.zeros((9, 32, 32, 3), np.uint8)], config)
    lrs = []
    for _ in range(6):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step(*trainer.draw_batch())
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_a_full_size_random_model_that_does_not_fit_is_refused_before_allocating(monkeypatch):
    from arcvdm.backbones import memory

    monkeypatch.setattr(memory, "free_bytes", lambda device: 2 * 2**30)  # a 2 GiB machine
    with pytest.raises(ArcvdmError, match=r"weights need 2\d\.\d GiB in float32 but cpu has 2.0 GiB free.*--force"):
        load_backbone("cogvideox1.5-5b-i2v-random", device="cpu")


@pytest.mark.parametrize("name", ["tiny", "tiny-ltx", "tiny-wan"])
def test_encoders_leave_the_training_device_once_their_embeddings_are_cached(name):
    """The text encoder (and Wan's CLIP image encoder) run on the training device, then go to `park_device`. Here
    the training device is the CPU, so the test parks on `meta`: the weights really leave it, and the cached
    embedding is still the one the encoder computed."""
    from test_train_sample import transition_video

    backbone = load_backbone(name, device="cpu")
    backbone.park_device = torch.device("meta")
    ran_on = []
    for part in ("text_encoder", "image_encoder"):
        if getattr(backbone.pipe, part, None) is not None:
            getattr(backbone.pipe, part).register_forward_pre_hook(
                lambda module, args, part=part: ran_on.append((part, next(module.parameters()).device.type)))
    prompt = "a prompt no test encoded before"
    cached = backbone.prompt_embeds(prompt)
    assert ran_on == [("text_encoder", "cpu")]
    assert {p.device.type for p in backbone.pipe.text_encoder.parameters()} == {"meta"}
    torch.testing.assert_close(cached, load_backbone(name, device="cpu").prompt_embeds(prompt))
    assert {p.device.type for p in backbone.transformer.parameters()} == {"cpu"}  # the rest stays
    if name == "tiny-wan":
        frames, size = 5, 32
        encoded = backbone.encode_videos([transition_video(0, frames, size)], torch.Generator().manual_seed(0))
        assert ran_on[1:] == [("image_encoder", "cpu")] and encoded["image_embeds"].device.type == "cpu"
        assert {p.device.type for p in backbone.pipe.image_encoder.parameters()} == {"meta"}


def test_wan_image_encoder_comes_to_the_device_once_for_a_batch_of_encodes():
    """`LoraTrainer.encode_videos` holds the family's `encoding_parts` over all its videos: the nested `using` of each
    encode leaves the CLIP encoder where it is (parked on `meta` after one video, it could not encode the next)."""
    from test_train_sample import transition_video

    backbone = load_backbone("tiny-wan", device="cpu")
    backbone.park_device = torch.device("meta")
    with backbone.using(*backbone.encoding_parts):
        embeds = [backbone.encode_videos([transition_video(i, 5, 32)], torch.Generator().manual_seed(0))["image_embeds"]
                  for i in range(2)]
        assert {p.device.type for p in backbone.pipe.image_encoder.parameters()} == {"cpu"}
    assert {p.device.type for p in backbone.pipe.image_encoder.parameters()} == {"meta"}
    assert not torch.equal(*embeds)


def test_cogvideox_encodes_a_batch_of_videos_in_one_vae_call_as_it_encodes_them_one_by_one(tiny, monkeypatch):
    """`encode_batch` (the mini's pretraining on fresh videos) changes how many videos a VAE call sees, not what comes
    back: the same latents from the same generator, the remainder chunk included, and the first frames unchanged."""
    from test_train_sample import transition_video

    videos = [transition_video(i) for i in range(3)]
    calls = []
    encode = tiny.pipe.vae.encode
    monkeypatch.setattr(tiny.pipe.vae, "encode", lambda x: (calls.append(x.shape[0]), encode(x))[1])
    one = tiny.encode_videos(videos, torch.Generator().manual_seed(0))
    monkeypatch.setattr(tiny, "encode_batch", 2)
    batched = tiny.encode_videos(videos, torch.Generator().manual_seed(0))
    assert calls == [1, 1, 1, 2, 1]
    torch.testing.assert_close(batched["latents"], one["latents"], atol=1e-4, rtol=1e-4)
    assert torch.equal(batched["first_frames"], one["first_frames"])


def test_activation_memory_is_counted_per_batch_and_shrinks_under_checkpointing():
    """`arcvdm/backbones/memory.py` counts what the backward pass keeps (the docs' memory table): it grows with the
    batch, and gradient checkpointing (6 blocks here) keeps only block inputs plus one block's worth."""
    from peft import LoraConfig

    from arcvdm.backbones.memory import activation_bytes

    backbone = load_backbone("tiny-wan", device="cpu")
    transformer = backbone.transformer
    backbone.pipe.transformer = type(transformer).from_config({**transformer.config, "num_layers": 6})  # 6 blocks
    backbone.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_v"]))
    one, two = (activation_bytes(backbone, batch, 5, 32, 32) for batch in (1, 2))
    assert two["plain"] > 1.2 * one["plain"] and two["checkpointed"] > one["checkpointed"]
    assert 0 < one["checkpointed"] < one["plain"]
    assert not backbone.transformer.gradient_checkpointing and not backbone.transformer.training  # left as found
