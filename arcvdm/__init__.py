"""arcvdm: few-shot visual learning with a frozen video diffusion model, scored on ARC and vision tasks."""

__version__ = "0.1.0"
