"""LTX-Video image-to-video: first-frame conditioning, the flow-matching objective, Euler sampling; the real weights
(hub id or local folder) and a same-shape random stand-in.

Two trainers train LTX-Video LoRAs differently; `train.first_frame` picks one (docs/backbones.md).

`train.first_frame = clean` (the family's default) is the objective `LTXImageToVideoPipeline.prepare_latents` and
`__call__` undo at inference, trained as the official LTX-Video-Trainer does (`ltxv_trainer/training_strategies.py`,
StandardTrainingStrategy with first-frame conditioning always on, as every I2V sample is conditioned):

- video in [-1, 1] -> VAE posterior sample -> (z - latents_mean) * scaling_factor / latents_std, packed to tokens
  [B, f*h*w, C] (frames outermost, so the first latent frame's h*w tokens come first), encoded once per problem.
  LTX's VAE encoder is causal: the first latent frame is the encoding of the first frame alone, which is what the
  pipeline puts there at inference;
- sigma = sigmoid(N(shift, 1)), the trainer's shifted logit-normal, with shift linear in the token count from
  0.95 at 1024 tokens to 2.05 at 4096 (the same constants as the scheduler's dynamic shift);
- x_sigma = (1 - sigma) x_0 + sigma * noise on every token except the first latent frame's, which stay clean;
- per-token timesteps sigma * 1000 * (1 - conditioning_mask): 0 on the clean first frame, exactly the tensor the
  pipeline builds (the trainer rounds sigma * 1000 to an integer; we pass the float the pipeline's scheduler passes);
- the transformer predicts the velocity noise - x_0; the MSE is taken over the other frames' tokens only;
- rotary positions use rope_interpolation_scale = (temporal compression / frame_rate, spatial, spatial) with the
  pipeline's default frame_rate of 25, at training and at inference alike; the T5 prompt comes with its attention mask.

`train.first_frame = finetrainers` (`paper-ltx`: Table 3's optimizer flags are finetrainers') is finetrainers' LTX-Video
objective (github.com/a-r-r-o-w/finetrainers, `finetrainers/models/ltx_video/base_specification.py`, `forward`):
sigma logit-normal(0, 1) with shift 1 (`arcvdm/backbones/flow_matching.py`); the first latent frame is noised like
the others, except that with probability 0.1 per step (`first_frame_conditioning_p`) its sigma is
min(U(0, 1) sigma, 0.25) (`min_first_frame_sigma`); every token gets the same timestep 1000 sigma and enters the loss.
finetrainers truncates 1000 sigma to an integer; we pass the float, as the pipeline's scheduler does at inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from arcvdm.backbones.base import ATTENTION_TARGETS, Backbone, stand_in_embeds
from arcvdm.backbones.flow_matching import logit_normal_sigmas

FRAME_RATE = 25  # the pipeline's default frame_rate; it sets the temporal rotary scale
MAX_SEQUENCE_LENGTH = 128  # the pipeline's default T5 prompt length
# LTX-Video-Trainer's shifted logit-normal sigma sampler: shift = linear in the token count through these points.
SIGMA_SHIFT_POINTS = ((1024, 0.95), (4096, 2.05))
# finetrainers' first-frame conditioning: how often, and the cap on the first frame's sigma when it happens.
FIRST_FRAME_CONDITIONING_P = 0.1
MIN_FIRST_FRAME_SIGMA = 0.25

# Lightricks/LTX-Video transformer/config.json (0.9.0, the 2B model): 1.92 B parameters.
TRANSFORMER_2B = dict(
    in_channels=128,
    out_channels=128,
    patch_size=1,
    patch_size_t=1,
    num_attention_heads=32,
    attention_head_dim=64,
    cross_attention_dim=2048,
    num_layers=28,
    activation_fn="gelu-approximate",
    qk_norm="rms_norm_across_heads",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    caption_channels=4096,
    attention_bias=True,
    attention_out_bias=True,
)

# Lightricks/LTX-Video vae/config.json (0.9.0): x32 spatial, x8 temporal compression to 128 channels.
VAE_2B = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=128,
    block_out_channels=(128, 256, 512, 512),
    decoder_block_out_channels=(128, 256, 512, 512),
    layers_per_block=(4, 3, 3, 3, 4),
    decoder_layers_per_block=(4, 3, 3, 3, 4),
    spatio_temporal_scaling=(True, True, True, False),
    decoder_spatio_temporal_scaling=(True, True, True, False),
    decoder_inject_noise=(False, False, False, False, False),
    upsample_residual=(False, False, False, False),
    upsample_factor=(1, 1, 1, 1),
    patch_size=4,
    patch_size_t=1,
    resnet_norm_eps=1e-6,
    scaling_factor=1.0,
    encoder_causal=True,
    decoder_causal=False,
    timestep_conditioning=False,
)

# Lightricks/LTX-Video scheduler/scheduler_config.json: resolution-dependent shift between these bounds.
SCHEDULER_2B = dict(
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=True,
    base_shift=0.95,
    max_shift=2.05,
    base_image_seq_len=1024,
    max_image_seq_len=4096,
    shift_terminal=0.1,
)

_ATTENTION = r"attn[12]\.(to_q|to_k|to_v|to_out\.0)"


def sigma_shift(tokens: int) -> float:
    """The mean of logit(sigma) for a video of `tokens` latent tokens (LTX-Video-Trainer's sampler)."""
    (n0, s0), (n1, s1) = SIGMA_SHIFT_POINTS
    return s0 + (s1 - s0) * (tokens - n0) / (n1 - n0)


class LTXBackbone(Backbone):
    family = "ltx"
    label = "LTX-Video"
    # The hub folder's model_index.json names the text-to-video pipeline; its parts load as the I2V one.
    pipeline_names = ("LTXImageToVideoPipeline", "LTXPipeline")
    frame_step = 8  # VAE x8 in time: 9 frames -> 2 latent frames
    side_multiple = 32  # VAE x32 in space, transformer patch 1
    # Self- and cross-attention alike (suffixes, as LTX-Video-Trainer's default `to_q, to_k, to_v, to_out.0`).
    lora_modules = {
        **ATTENTION_TARGETS,
        "qkvo-ff": [*ATTENTION_TARGETS["qkvo"], "ff.net.0.proj", "ff.net.2"],
        # Every linear layer inside the transformer blocks: both attentions and the feed-forward (LTX's blocks
        # modulate with a learned table, not a linear, so this is the qkvo-ff set); not the patch embedding,
        # caption projection, timestep embedding or output head.
        "block-linear": rf"transformer_blocks\.\d+\.({_ATTENTION}|ff\.net\.(0\.proj|2))",
        # peft's own shorthand: the block linears plus proj_in, proj_out, the AdaLN time-embedding linears and the
        # caption projection (what finetrainers' `--target_modules all-linear` wraps).
        "all-linear": "all-linear",
    }
    training_choices = {"first_frame": "clean"}
    schedulers = {"euler": "FlowMatchEulerDiscreteScheduler"}
    # One step stretches the sigmas to the terminal shift 0.1 by dividing by zero: the pipeline would sample NaN.
    min_sample_steps = 2

    # --- shapes ----------------------------------------------------------------------------------------------------

    @property
    def temporal_compression(self) -> int:
        return self.pipe.vae_temporal_compression_ratio

    @property
    def spatial_compression(self) -> int:
        return self.pipe.vae_spatial_compression_ratio

    def latent_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(latent frames, height, width): 9 x 480 x 704 -> 2 x 15 x 22."""
        s, t = self.pipe.vae_spatial_compression_ratio, self.temporal_compression
        return (frames - 1) // t + 1, height // s, width // s

    def rope_interpolation_scale(self) -> tuple[float, float, float]:
        s, t = self.pipe.vae_spatial_compression_ratio, self.temporal_compression
        return t / FRAME_RATE, s, s

    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, f, h, w] -> [B, f*h*w, C], the pipeline's token order."""
        return self.pipe._pack_latents(latents, self.pipe.transformer_spatial_patch_size,
                                       self.pipe.transformer_temporal_patch_size)

    # --- conditioning and objective --------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> dict[str, torch.Tensor]:
        if self.pipe.text_encoder is None:  # the random 2B stand-in: distinct prompts stay distinct
            embeds = stand_in_embeds(prompt, 1, MAX_SEQUENCE_LENGTH, self.transformer.config.caption_channels)
            mask = torch.ones(1, MAX_SEQUENCE_LENGTH, dtype=torch.bool)
        else:
            embeds, mask, _, _ = self.pipe.encode_prompt(prompt, do_classifier_free_guidance=False,
                                                         max_sequence_length=MAX_SEQUENCE_LENGTH,
                                                         device=self.device, dtype=self.dtype)
        return {"prompt_embeds": embeds.to(self.dtype), "prompt_attention_mask": mask}

    @torch.no_grad()
    def encode_videos(self, videos: list[np.ndarray], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`latents`: fp32 [N, C, f, h, w], normalised with the VAE's latents_mean / latents_std."""
        vae = self.pipe.vae
        latents = []
        for video in videos:
            pixels = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # [1, 3, F, H, W]
            latent = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.sample(generator)
            latent = self.pipe._normalize_latents(latent, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
            latents.append(latent.float().cpu())
        return {"latents": torch.cat(latents)}

    def draw_noise(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`noise`, the videos' `sigmas` and `first_sigmas`, the first latent frame's (0: clean, as conditioned)."""
        latents = batch["latents"]
        b, _, f, h, w = latents.shape
        noise = torch.randn(latents.shape, generator=generator)
        if self.first_frame == "clean":
            sigmas = torch.sigmoid(torch.randn(b, generator=generator) + sigma_shift(f * h * w))
            return {"noise": noise, "sigmas": sigmas, "first_sigmas": torch.zeros(b)}
        sigmas = logit_normal_sigmas(b, generator)
        conditioned = torch.rand(1, generator=generator) < FIRST_FRAME_CONDITIONING_P  # one coin per step
        capped = torch.clamp(torch.rand(b, generator=generator) * sigmas, max=MIN_FIRST_FRAME_SIGMA)
        return {"noise": noise, "sigmas": sigmas, "first_sigmas": torch.where(conditioned, capped, sigmas)}

    def loss(self, batch: dict[str, torch.Tensor], draw: dict[str, torch.Tensor],
             prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flow-matching MSE for these videos at these (noise, sigmas): with a clean first frame (timestep 0,
        out of the loss), or finetrainers' way (its own first-frame sigma, one timestep, every token in the loss)."""
        latents = batch["latents"].to(self.device)
        b, _, f, h, w = latents.shape
        clean = self.pack(latents)
        noise = self.pack(draw["noise"].to(self.device))
        sigmas = draw["sigmas"].to(self.device).view(-1, 1, 1)
        first_sigmas = draw["first_sigmas"].to(self.device).view(-1, 1, 1)
        first = h * w  # the first latent frame's tokens
        noisy = torch.cat([((1 - first_sigmas) * clean + first_sigmas * noise)[:, :first],
                           ((1 - sigmas) * clean + sigmas * noise)[:, first:]], dim=1)
        timestep = (sigmas.view(-1, 1) * 1000.0).expand(-1, clean.shape[1]).clone()
        scored = first if self.first_frame == "clean" else 0  # the tokens the loss scores start here
        timestep[:, :scored] = 0.0
        prediction = self.transformer(
            hidden_states=noisy.to(self.dtype),
            encoder_hidden_states=prompt["prompt_embeds"].expand(b, -1, -1),
            timestep=timestep,
            encoder_attention_mask=prompt["prompt_attention_mask"].expand(b, -1),
            num_frames=f,
            height=h,
            width=w,
            rope_interpolation_scale=self.rope_interpolation_scale(),
            return_dict=False,
        )[0]
        target = noise - clean
        return F.mse_loss(prediction[:, scored:].float(), target[:, scored:].float())

    def generate(self, images: torch.Tensor, prompt: dict[str, torch.Tensor], config,
                 generators: list[torch.Generator]) -> np.ndarray:
        s = config.sample
        self.use_scheduler(s.scheduler)
        b = len(images)
        negative = self.prompt_embeds("") if s.guidance_scale > 1.0 else {}
        out = self.pipe(
            image=images,  # fp32 on CPU: the pipeline normalises it, then moves it to the backbone's device and dtype
            prompt_embeds=prompt["prompt_embeds"].expand(b, -1, -1),
            prompt_attention_mask=prompt["prompt_attention_mask"].expand(b, -1),
            negative_prompt_embeds=negative["prompt_embeds"].expand(b, -1, -1) if negative else None,
            negative_prompt_attention_mask=negative["prompt_attention_mask"].expand(b, -1) if negative else None,
            frame_rate=FRAME_RATE,
            generator=generators,
            **self.shape_and_steps(config),
        )[0]
        return np.asarray(out, dtype=np.float32)

    def forward_inputs(self, frames: int, height: int, width: int, device: torch.device) -> dict[str, Any]:
        config = self.transformer.config
        f, h, w = self.latent_size(frames, height, width)
        return dict(
            hidden_states=torch.empty(1, f * h * w, config.in_channels, device=device),
            encoder_hidden_states=torch.empty(1, MAX_SEQUENCE_LENGTH, config.caption_channels, device=device),
            timestep=torch.ones(1, f * h * w, device=device),
            encoder_attention_mask=torch.ones(1, MAX_SEQUENCE_LENGTH, device=device),
            num_frames=f,
            height=h,
            width=w,
            rope_interpolation_scale=self.rope_interpolation_scale(),
        )


def build_random_2b(device: torch.device, dtype: torch.dtype, force: bool = False):
    """The full-size transformer and VAE with random weights, allocated directly on `device` in `dtype`.

    For speed and memory benchmarks without a download; on the `meta` device nothing is allocated, which is enough
    to count FLOPs. There is no text encoder: prompt embeddings are seeded random [1, 128, 4096] with a full mask.
    """
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    from arcvdm.backbones.memory import random_pipeline

    return random_pipeline(
        LTXImageToVideoPipeline, "ltx-video-2b-i2v-random",
        lambda: {"transformer": LTXVideoTransformer3DModel(**TRANSFORMER_2B), "vae": AutoencoderKLLTXVideo(**VAE_2B)},
        device, dtype, force, scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_2B))
