"""Wan2.1 image-to-video (14B, 480P): conditioning, the flow-matching objective, UniPC sampling; the real weights (hub
id or local folder) and a same-shape random stand-in.

The objective is the one `WanImageToVideoPipeline` undoes at inference (`prepare_latents` and `__call__`, diffusers
0.42); finetrainers' Wan specification (github.com/a-r-r-o-w/finetrainers,
`finetrainers/models/wan/base_specification.py`) builds the same conditioning, latents and target:

- video in [-1, 1] -> VAE posterior sample, normalised (z - latents_mean) / latents_std, as [B, C, f, h, w],
  encoded once per problem;
- the conditioning is built by the pipeline's own `prepare_latents` from the first frame, once per video: the first
  frame followed by F - 1 zero frames, VAE-encoded (posterior mode), normalised, behind 4 mask channels (1 on the
  first frame's latent slots, 0 elsewhere); it is concatenated with the noisy latents on channels (16 + 4 + 16 = 36);
- the CLIP image embedding (`pipe.encode_image`: penultimate hidden states of the first frame) goes in as
  `encoder_hidden_states_image`; the text as UMT5 embeddings padded to 512 tokens, as `__call__` encodes them;
- every step a sigma, drawn as `train.sigma_sampling` says (docs/backbones.md):
  `shifted-uniform` (the family's default): u ~ U(0, 1), sigma = shift u / (1 + (shift - 1) u) with the shipped
  scheduler's flow_shift (3.0 for 480P: the sigmas the sampler visits; median 0.75). No trainer does exactly this:
  DiffSynth-Studio draws shifted sigmas from a 1000-step table and reweights the loss;
  `logit-normal` (`paper-wan`): finetrainers' draw, sigmoid(N(0, 1)) with shift 1 on its 1000-step table
  (`arcvdm/backbones/flow_matching.py`; median 0.5);
- x_t = (1 - sigma) x_0 + sigma noise, timestep = 1000 sigma (finetrainers truncates it to an integer; we pass the
  float, as the sampler does), and the transformer predicts noise - x_0 under an unweighted MSE (finetrainers'
  target, and its weighting under both of its schemes here). finetrainers also normalises the VAE's log-variance
  with the latent mean and std before sampling the posterior; we sample, then normalise, as `prepare_latents` does.

Precision as the stock example loads it: the VAE and the CLIP image encoder in fp32 under a bf16 transformer, whose
`_keep_in_fp32_modules` stay fp32 too; the UMT5 and CLIP encoders wait on the CPU while unused.

The pipeline conditions one image per call (its `prepare_latents` repeats the condition per generator), so
`generate` runs it once per first frame. Wan2.2 TI2V (`arcvdm/backbones/wan22.py`) subclasses this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from arcvdm.backbones.base import ATTENTION_TARGETS, Backbone, stand_in_embeds
from arcvdm.backbones.flow_matching import logit_normal_sigmas

TEXT_TOKENS = 512  # `WanImageToVideoPipeline.__call__` pads the UMT5 embeddings to max_sequence_length=512

# Wan-AI/Wan2.1-I2V-14B-480P-Diffusers transformer/config.json.
TRANSFORMER_14B_I2V = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=40,
    attention_head_dim=128,
    in_channels=36,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=13824,
    num_layers=40,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=1280,
    added_kv_proj_dim=5120,
    rope_max_seq_len=1024,
)

# The image encoder (open-clip XLM-RoBERTa-large ViT-H/14, vision tower) as CLIPVisionModel: 257 tokens x 1280.
CLIP_VIT_H = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                  image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5)

# Wan-AI/Wan2.1-I2V-14B-480P-Diffusers scheduler/scheduler_config.json (flow_shift 3.0 for 480P, 5.0 for 720P).
SCHEDULER_WAN21_480P = dict(
    num_train_timesteps=1000,
    prediction_type="flow_prediction",
    use_flow_sigmas=True,
    flow_shift=3.0,
    solver_order=2,
    solver_type="bh2",
    predict_x0=True,
    lower_order_final=True,
    final_sigmas_type="zero",
    timestep_spacing="linspace",
)

_BLOCK_LINEARS = r"(attn1\.(to_q|to_k|to_v|to_out\.0)|attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)|ffn\.net\.(0\.proj|2))"


def flow_shift(scheduler_config) -> float:
    """The sigma shift of a flow-matching scheduler config (UniPC calls it flow_shift, FlowMatchEuler shift)."""
    return float(scheduler_config.get("flow_shift") or scheduler_config.get("shift") or 1.0)


class WanBackbone(Backbone):
    family = "wan"
    label = "Wan2.1 I2V"
    pipeline_names = ("WanImageToVideoPipeline",)
    frame_step = 4  # the VAE's temporal compression: 9 frames -> 3 latent frames
    side_multiple = 16  # VAE x8, patch x2
    # Suffixes match both the self-attention (attn1) and the text/image cross-attention (attn2), as Wan LoRAs do
    # (DiffSynth-Studio's default targets q,k,v,o,ffn.0,ffn.2).
    lora_modules = {
        **ATTENTION_TARGETS,
        "qkvo-ff": [*ATTENTION_TARGETS["qkvo"], "ffn.net.0.proj", "ffn.net.2"],
        # every linear layer in the blocks, the image cross-attention's key/value projections included
        "block-linear": rf"blocks\.\d+\.{_BLOCK_LINEARS}",
        # peft's own shorthand: the block linears plus the condition embedders and the output head
        "all-linear": "all-linear",
    }
    training_choices = {"sigma_sampling": "shifted-uniform"}
    fp32_parts = ("vae", "image_encoder")  # the stock Wan2.1 I2V example loads these in fp32
    parked_parts = ("text_encoder", "image_encoder")
    encoding_parts = ("image_encoder",)  # Wan2.1's CLIP embedding of each first frame
    # The hub pipeline ships UniPC with flow sigmas; the flow-matching Euler sampler is the other stock choice.
    schedulers = {"unipc": "UniPCMultistepScheduler", "euler": "FlowMatchEulerDiscreteScheduler"}

    @classmethod
    def claims(cls, index: dict) -> bool:
        # Wan2.2 TI2V ships the same pipeline class with expand_timesteps (arcvdm/backbones/wan22.py).
        return super().claims(index) and not index.get("expand_timesteps", False)

    def __init__(self, pipe, name: str, device: torch.device, dtype: torch.dtype):
        super().__init__(pipe, name, device, dtype)
        self.shift = flow_shift(pipe.scheduler.config)  # training sigmas follow the shipped sampler's shift

    def scheduler_settings(self, class_name: str) -> dict[str, Any]:
        """The shipped flow shift, under either scheduler's spelling of it."""
        if class_name == "FlowMatchEulerDiscreteScheduler":
            return {"shift": self.shift}
        return {"flow_shift": self.shift, "use_flow_sigmas": True, "prediction_type": "flow_prediction"}

    # --- shapes ----------------------------------------------------------------------------------------------------

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        s = self.pipe.vae_scale_factor_spatial
        return (frames - 1) // self.temporal_compression + 1, height // s, width // s

    def image_tokens(self) -> int:
        config = self.pipe.image_encoder.config
        return (config.image_size // config.patch_size) ** 2 + 1

    # --- conditioning and objective --------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> dict[str, torch.Tensor]:
        if self.pipe.text_encoder is None:  # the random full-size stand-in: distinct prompts stay distinct
            embeds = stand_in_embeds(prompt, 1, TEXT_TOKENS, self.transformer.config.text_dim)
        else:
            embeds, _ = self.pipe.encode_prompt(prompt, do_classifier_free_guidance=False,
                                                max_sequence_length=TEXT_TOKENS, device=self.device, dtype=self.dtype)
        return {"prompt_embeds": embeds.to(self.dtype)}

    def normalise(self, latents: torch.Tensor) -> torch.Tensor:
        config = self.pipe.vae.config
        mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1).to(latents)
        std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1).to(latents)
        return (latents - mean) / std

    @torch.no_grad()
    def encode_videos(self, videos: list[np.ndarray], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`latents`: normalised VAE samples, fp32 [N, C, f, h, w]; `condition`: what `prepare_latents` builds from
        the first frame; `image_embeds` (Wan2.1): the CLIP embedding of the first frame."""
        from PIL import Image

        out: dict[str, list[torch.Tensor]] = {}
        for video in videos:
            frames, height, width = video.shape[:3]
            pixels = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # [1, 3, F, H, W]
            latent = self.pipe.vae.encode(pixels.to(self.device, self.pipe.vae.dtype)).latent_dist.sample(generator)
            out.setdefault("latents", []).append(self.normalise(latent.float()).cpu())
            placeholder = torch.zeros(1, self.pipe.vae.config.z_dim, *self.latent_shape(frames, height, width))
            condition = self.pipe.prepare_latents(pixels[:, :, 0].to(self.device), 1, placeholder.shape[1], height,
                                                  width, frames, torch.float32, self.device, latents=placeholder)[1]
            out.setdefault("condition", []).append(condition.float().cpu())
            if self.transformer.config.image_dim is not None:
                with self.using("image_encoder"):
                    embeds = self.pipe.encode_image(Image.fromarray(video[0]), self.device)
                out.setdefault("image_embeds", []).append(embeds.float().cpu())
        return {key: torch.cat(value) for key, value in out.items()}

    def draw_noise(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        latents = batch["latents"]
        if self.sigma_sampling == "logit-normal":
            sigmas = logit_normal_sigmas(latents.shape[0], generator)
        else:
            u = torch.rand(latents.shape[0], generator=generator)
            sigmas = self.shift * u / (1 + (self.shift - 1) * u)  # the shifted schedule the sampler visits
        return {"noise": torch.randn(latents.shape, generator=generator), "sigmas": sigmas}

    def model_inputs(self, noisy: torch.Tensor, condition: torch.Tensor,
                     timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden_states, timestep) as `__call__` feeds the transformer: Wan2.1 concatenates the mask channels and
        image latents with the noisy latents and gives one timestep per video."""
        return torch.cat([noisy, condition], dim=1), timesteps

    def loss_frames(self, prediction: torch.Tensor) -> torch.Tensor:
        """The latent frames the objective scores (all of them for Wan2.1)."""
        return prediction

    def loss(self, batch: dict[str, torch.Tensor], draw: dict[str, torch.Tensor],
             prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flow-matching MSE (target noise - x_0) for these videos at these (noise, sigma)."""
        latents = batch["latents"].to(self.device)
        noise, sigmas = draw["noise"].to(self.device), draw["sigmas"].to(self.device)
        b = latents.shape[0]
        sigma = sigmas.view(-1, 1, 1, 1, 1)
        noisy = (1 - sigma) * latents + sigma * noise
        timesteps = sigmas * self.pipe.scheduler.config.num_train_timesteps
        hidden, timestep = self.model_inputs(noisy, batch["condition"].to(self.device), timesteps)
        image = batch.get("image_embeds")
        prediction = self.transformer(
            hidden_states=hidden.to(self.dtype),
            timestep=timestep,
            encoder_hidden_states=prompt["prompt_embeds"].expand(b, -1, -1),
            encoder_hidden_states_image=None if image is None else image.to(self.device, self.dtype),
            return_dict=False,
        )[0]
        return F.mse_loss(self.loss_frames(prediction).float(), self.loss_frames(noise - latents).float())

    def generate(self, images: torch.Tensor, prompt: dict[str, torch.Tensor], config,
                 generators: list[torch.Generator]) -> np.ndarray:
        self.use_scheduler(config.sample.scheduler)
        negative = self.prompt_embeds("")["prompt_embeds"] if config.sample.guidance_scale > 1.0 else None
        videos = []
        with self.using("image_encoder"):  # the pipeline encodes the image itself (it refuses image_embeds with image)
            for image, generator in zip(images, generators):  # the pipeline takes one conditioning image per call
                videos.append(self.sample_one(image, generator, prompt, negative, config))
        return np.concatenate(videos).astype(np.float32)

    def sample_one(self, image: torch.Tensor, generator: torch.Generator, prompt: dict[str, torch.Tensor],
                   negative: torch.Tensor | None, config) -> np.ndarray:
        """One video from one first frame (fp32 [3, H, W] in [0, 1]) through the stock pipeline."""
        from PIL import Image

        pixels = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # exact: frames are uint8 / 255
        return self.pipe(
            image=Image.fromarray(pixels),  # what the pipeline's CLIP processor and VAE expect
            prompt_embeds=prompt["prompt_embeds"],
            negative_prompt_embeds=negative,
            generator=generator,
            **self.shape_and_steps(config),
        )[0]

    def forward_inputs(self, frames: int, height: int, width: int, device: torch.device) -> dict[str, Any]:
        config = self.transformer.config
        f, h, w = self.latent_shape(frames, height, width)
        return dict(
            hidden_states=torch.empty(1, config.in_channels, f, h, w, device=device),
            timestep=self.token_timesteps(torch.ones(1), f, h, w).to(device),
            encoder_hidden_states=torch.empty(1, TEXT_TOKENS, config.text_dim, device=device),
            encoder_hidden_states_image=None if config.image_dim is None else
            torch.empty(1, self.image_tokens(), config.image_dim, device=device),
        )

    def token_timesteps(self, timesteps: torch.Tensor, f: int, h: int, w: int) -> torch.Tensor:
        """The timestep tensor one forward gets at this latent size (Wan2.1: one per video)."""
        return timesteps


def build_random_14b(device: torch.device, dtype: torch.dtype, force: bool = False):
    """The full-size Wan2.1 I2V transformer, VAE and CLIP ViT-H image encoder with random weights, on `device` in
    `dtype` (nothing allocated on `meta`: enough to count FLOPs). No UMT5: prompt embeddings are seeded random
    [1, 512, 4096]. The image encoder stays because the stock pipeline encodes the image itself (it refuses
    `image_embeds` together with `image`)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from arcvdm.backbones.memory import random_pipeline

    return random_pipeline(
        WanImageToVideoPipeline, "wan2.1-i2v-14b-480p-random",
        lambda: {"transformer": WanTransformer3DModel(**TRANSFORMER_14B_I2V), "vae": AutoencoderKLWan(),
                 "image_encoder": CLIPVisionModel(CLIPVisionConfig(**CLIP_VIT_H))},
        device, dtype, force, scheduler=UniPCMultistepScheduler(**SCHEDULER_WAN21_480P),
        image_processor=CLIPImageProcessor(),  # 224 px crop, OpenAI CLIP mean and std, as shipped
    )
