"""CogVideoX1.5 image-to-video: conditioning, the v-prediction objective, DPM sampling; the real weights (hub id or
local folder) and a same-shape random stand-in.

The objective is the one the pipeline undoes at inference (`CogVideoXImageToVideoPipeline.prepare_latents` and
`__call__`) and the official CogVideo fine-tuning trainer computes:

- video in [-1, 1] -> VAE latents x scaling_factor, as [B, F, C, h, w], encoded once per problem;
- every step, the clean first frame gets image noise sigma = exp(N(-3, 0.5)) and is encoded again
  -> image latents / scaling_factor (the 1.5 VAE's `invert_scale_latents` convention), followed by zero
  latents for the other frames (the official trainer redraws this noise every step, so do we);
- an odd latent frame count is padded to the temporal patch of 2 by a copy of the first latent frame, which
  the pipeline drops after denoising; rotary embeddings are built for the padded size;
- t ~ U{0, ..., 999}, x_t = scheduler.add_noise(x_0, noise, t), ofs = 2.0, and the transformer predicts
  v = scheduler.get_velocity(x_0, noise, t) under an MSE loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from arcvdm.backbones.base import ATTENTION_TARGETS, Backbone, latent_mse, stand_in_embeds

IMAGE_NOISE_LOG_SIGMA = (-3.0, 0.5)  # mean and std of log sigma, as in CogVideoX's I2V training
OFS = 2.0  # the pipeline always passes ofs = 2.0; the output depends on it

# CogVideoX1.5-5B-I2V transformer/config.json: 5.57 B parameters.
TRANSFORMER_5B = dict(
    num_attention_heads=48,
    attention_head_dim=64,
    in_channels=32,
    out_channels=16,
    num_layers=42,
    time_embed_dim=512,
    ofs_embed_dim=512,
    text_embed_dim=4096,
    max_text_seq_length=226,
    patch_size=2,
    patch_size_t=2,
    patch_bias=False,
    sample_width=300,
    sample_height=300,
    sample_frames=81,
    temporal_compression_ratio=4,
    spatial_interpolation_scale=1.875,
    temporal_interpolation_scale=1.0,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=False,
    activation_fn="gelu-approximate",
    timestep_activation_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
    attention_bias=True,
    norm_eps=1e-5,
)

# CogVideoX1.5-5B-I2V vae/config.json.
VAE_5B = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(128, 256, 256, 512),
    latent_channels=16,
    layers_per_block=3,
    norm_num_groups=32,
    norm_eps=1e-6,
    temporal_compression_ratio=4,
    sample_height=480,
    sample_width=720,
    scaling_factor=0.7,
    invert_scale_latents=True,
    use_quant_conv=False,
    use_post_quant_conv=False,
)

# The 5B models' scheduler (CogVideoX1.5-5B-I2V scheduler/scheduler_config.json).
SCHEDULER_5B = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    snr_shift_scale=1.0,
    timestep_spacing="trailing",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=0,
)

_ATTENTION = {"to_q": r"attn1\.to_q", "to_k": r"attn1\.to_k", "to_v": r"attn1\.to_v", "to_out.0": r"attn1\.to_out\.0"}


class CogVideoXBackbone(Backbone):
    family = "cogvideox"
    label = "CogVideoX1.5"
    pipeline_names = ("CogVideoXImageToVideoPipeline",)
    frame_step = 8  # 9 frames -> 3 latent frames, padded to 4 for the temporal patch of 2
    side_multiple = 16  # VAE x8, patch x2
    lora_modules = {
        **ATTENTION_TARGETS,
        "qkvo-ff": [*ATTENTION_TARGETS["qkvo"], "ff.net.0.proj", "ff.net.2"],
        # Every linear layer inside the transformer blocks (attention, feed-forward, adaptive norms),
        # not the patch embedding or the output head.
        "block-linear": r"transformer_blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|norm[12]\.linear)",
        # peft's own shorthand: the block linears plus the patch, time and ofs embeddings and the output head
        "all-linear": "all-linear",
    }
    # The hub pipeline ships DDIM, but the official trainer's validation and the 5B inference demo sample with DPM.
    schedulers = {"dpm": "CogVideoXDPMScheduler", "ddim": "CogVideoXDDIMScheduler"}
    # Videos per VAE call in `encode_videos`. One holds a 5B VAE's memory to one video and keeps every run's latents
    # as they were; the mini's pretraining on fresh videos encodes a step's batch at once (3.6x faster at 80x80 on
    # one CPU thread: docs/mini.md).
    encode_batch = 1

    @classmethod
    def largest_canvas(cls, transformer: dict, vae: dict) -> tuple[int, int] | None:
        """CogVideoX1.5 (a temporal patch) slices its rotary positions from a table of sample_height x sample_width
        latents (diffusers `get_3d_rotary_pos_embed(grid_type="slice")`): a larger canvas fails inside the
        transformer with "Sizes of tensors must match". 1.0 interpolates its positions to any size."""
        if transformer.get("patch_size_t") is None or not transformer.get("use_rotary_positional_embeddings"):
            return None
        p = transformer["patch_size"]
        spatial = 2 ** (len(vae["block_out_channels"]) - 1)  # the pipeline's vae_scale_factor_spatial
        return transformer["sample_height"] // p * p * spatial, transformer["sample_width"] // p * p * spatial

    @classmethod
    def load_pretrained(cls, name_or_path: str, dtype: torch.dtype):
        pipe = super().load_pretrained(name_or_path, dtype)
        from diffusers import CogVideoXDPMScheduler

        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)  # the shipped config, DPM's steps
        return pipe

    # --- shapes ----------------------------------------------------------------------------------------------------

    def latent_frames(self, frames: int) -> tuple[int, int]:
        """(latent frames, padded latent frames): 9 frames -> 3 latents, padded to 4 for the temporal patch of 2."""
        n = (frames - 1) // self.temporal_compression + 1
        p_t = self.transformer.config.patch_size_t or 1
        return n, n + (-n) % p_t

    def rotary_embeds(self, height: int, width: int, padded_latent_frames: int, device=None):
        """The rotary position embedding the pipeline uses for this (padded) size; without it the model has no positions."""
        return self.pipe._prepare_rotary_positional_embeddings(height, width, padded_latent_frames, device or self.device)

    # --- conditioning and objective --------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> dict[str, torch.Tensor]:
        config = self.transformer.config
        if self.pipe.text_encoder is None:  # the random 5B stand-in: distinct prompts stay distinct
            embeds = stand_in_embeds(prompt, 1, config.max_text_seq_length, config.text_embed_dim)
        else:
            embeds, _ = self.pipe.encode_prompt(prompt, do_classifier_free_guidance=False,
                                                max_sequence_length=config.max_text_seq_length,
                                                device=self.device, dtype=self.dtype)
        return {"prompt_embeds": embeds.to(self.dtype)}

    @torch.no_grad()
    def encode_videos(self, videos: list[np.ndarray], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`latents`: fp32 [N, padded latent frames, C, h, w] x scaling_factor; `first_frames`: the clean first frames,
        fp32 [N, 3, 1, H, W] in [-1, 1], noised and encoded again at every step. The VAE sees `encode_batch` videos a
        call."""
        vae = self.pipe.vae
        latents, firsts = [], []
        for start in range(0, len(videos), self.encode_batch):
            chunk = np.stack(videos[start:start + self.encode_batch])
            pixels = torch.from_numpy(chunk).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # [B, 3, F, H, W]
            latent = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.sample(generator)
            latents.append((latent * vae.config.scaling_factor).permute(0, 2, 1, 3, 4).float().cpu())
            firsts.append(pixels[:, :, :1])
        latents = torch.cat(latents)
        n, padded = self.latent_frames(len(videos[0]))
        latents = torch.cat([latents[:, :1].expand(-1, padded - n, -1, -1, -1), latents], dim=1)
        return {"latents": latents, "first_frames": torch.cat(firsts)}

    def draw_noise(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        latents, first = batch["latents"], batch["first_frames"]
        b, _, c, h, w = latents.shape
        return {
            "noise": torch.randn(latents.shape, generator=generator),
            "timesteps": torch.randint(0, self.pipe.scheduler.config.num_train_timesteps, (b,), generator=generator),
            "image_sigma": torch.normal(*IMAGE_NOISE_LOG_SIGMA, (b,), generator=generator).exp(),
            "image_noise": torch.randn(first.shape, generator=generator),
            "image_posterior": torch.randn((b, c, 1, h, w), generator=generator),  # the VAE posterior's sample
        }

    def image_latents(self, first_frames: torch.Tensor, draw: dict[str, torch.Tensor], padded: int) -> torch.Tensor:
        """[B, padded, C, h, w]: the noised first frame's latents, then zeros, as `prepare_latents` builds them."""
        vae = self.pipe.vae
        sigma = draw["image_sigma"].view(-1, 1, 1, 1, 1)
        noised = (first_frames + sigma * draw["image_noise"]).to(self.device, vae.dtype)
        with torch.no_grad():
            posterior = vae.encode(noised).latent_dist
            image = posterior.mean + posterior.std * draw["image_posterior"].to(self.device, vae.dtype)
        scale = vae.config.scaling_factor
        image = (image / scale if vae.config.invert_scale_latents else image * scale).permute(0, 2, 1, 3, 4)
        return torch.cat([image, image.new_zeros(image.shape[0], padded - 1, *image.shape[2:])], dim=1)

    def loss(self, batch: dict[str, torch.Tensor], draw: dict[str, torch.Tensor],
             prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        """The v-prediction MSE for these videos at these (noise, t, image noise)."""
        scheduler = self.pipe.scheduler
        latents = batch["latents"].to(self.device)
        noise, timesteps = draw["noise"].to(self.device), draw["timesteps"].to(self.device)
        b, padded, _, h, w = latents.shape
        image = self.image_latents(batch["first_frames"], draw, padded)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        s = self.pipe.vae_scale_factor_spatial
        prediction = self.transformer(
            hidden_states=torch.cat([noisy.to(self.dtype), image.to(self.dtype)], dim=2),
            encoder_hidden_states=prompt["prompt_embeds"].expand(b, -1, -1),
            timestep=timesteps,
            ofs=torch.full((1,), OFS, device=self.device, dtype=self.dtype),
            image_rotary_emb=self.rotary_embeds(h * s, w * s, padded),
            return_dict=False,
        )[0]
        target = scheduler.get_velocity(latents, noise, timesteps)
        return latent_mse(prediction, target, batch.get("frame_weights"))

    def generate(self, images: torch.Tensor, prompt: dict[str, torch.Tensor], config,
                 generators: list[torch.Generator]) -> np.ndarray:
        s = config.sample
        self.use_scheduler(s.scheduler)
        b = len(images)
        negative = self.prompt_embeds("")["prompt_embeds"].expand(b, -1, -1) if s.guidance_scale > 1.0 else None
        out = self.pipe(
            image=images,  # fp32 on CPU: the pipeline normalises it, then moves it to the backbone's device and dtype
            prompt_embeds=prompt["prompt_embeds"].expand(b, -1, -1),
            negative_prompt_embeds=negative,
            generator=generators,
            **self.shape_and_steps(config),
        )[0]
        return np.asarray(out, dtype=np.float32)

    def forward_inputs(self, frames: int, height: int, width: int, device: torch.device) -> dict[str, Any]:
        config = self.transformer.config
        _, padded = self.latent_frames(frames)
        s = self.pipe.vae_scale_factor_spatial
        rotary = tuple(r.to(device) for r in self.rotary_embeds(height, width, padded, device="cpu"))
        return dict(
            hidden_states=torch.empty(1, padded, config.in_channels, height // s, width // s, device=device),
            encoder_hidden_states=torch.empty(1, config.max_text_seq_length, config.text_embed_dim, device=device),
            timestep=torch.ones(1, device=device),
            ofs=torch.full((1,), OFS, device=device) if config.ofs_embed_dim else None,
            image_rotary_emb=rotary,
        )


def build_random_5b(device: torch.device, dtype: torch.dtype, force: bool = False):
    """The full-size transformer and VAE with random weights, allocated directly on `device` in `dtype`.

    For speed and memory benchmarks without a download. On the `meta` device nothing is allocated,
    which is enough to count FLOPs. There is no text encoder: prompt embeddings are seeded random [1, 226, 4096].
    """
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    from arcvdm.backbones.memory import random_pipeline

    return random_pipeline(
        CogVideoXImageToVideoPipeline, "cogvideox1.5-5b-i2v-random",
        lambda: {"transformer": CogVideoXTransformer3DModel(**TRANSFORMER_5B), "vae": AutoencoderKLCogVideoX(**VAE_5B)},
        device, dtype, force, scheduler=CogVideoXDPMScheduler(**SCHEDULER_5B))
