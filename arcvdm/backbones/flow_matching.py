"""finetrainers' flow-matching sigma draw, shared by the LTX-Video and Wan2.1 families' finetrainers readings.

finetrainers (github.com/a-r-r-o-w/finetrainers, `finetrainers/utils/diffusion_utils.py`: `prepare_sigmas`,
`compute_density_for_timestep_sampling`) draws u = sigmoid(N(flow_logit_mean, flow_logit_std)) under
`--flow_weighting_scheme logit_normal` (its LTX-Video and Wan I2V example scripts, e.g.
`examples/training/sft/wan_i2v/3dgs_dissolve/train.sh`), indexes the 1000 training sigmas of a default
`FlowMatchEulerDiscreteScheduler()` (shift 1: sigma_i = 1 - i / 1000) at floor(1000 u), and weights the loss by 1
under that scheme (diffusers' `compute_loss_weighting_for_sd3`).
"""

from __future__ import annotations

import torch

TRAIN_TIMESTEPS = 1000


def logit_normal_sigmas(n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` sigmas as finetrainers draws them: logit-normal(0, 1), shift 1, on the 1000-step table (0.001 ... 1)."""
    u = torch.sigmoid(torch.randn(n, generator=generator))
    return 1.0 - torch.floor(u * TRAIN_TIMESTEPS) / TRAIN_TIMESTEPS
