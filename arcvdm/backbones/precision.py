"""Casting a loaded model to a dtype the way the stock `from_pretrained(dtype=...)` leaves it, without `.to(dtype)`.

diffusers keeps some modules in fp32 whatever the requested dtype (`_keep_in_fp32_modules`, e.g. Wan's rotary
embedding, time embedder, modulation tables and norms) and warns when a model is cast wholesale with `.to(dtype)`,
which would cast those too. transformers keeps `_keep_in_fp32_modules_strict` in fp32 under bf16 and fp16 and
`_keep_in_fp32_modules` under fp16 only. `cast_like_from_pretrained` applies the same rules to a model built in
memory (the tiny and full-size random backbones) or loaded in another dtype.
"""

from __future__ import annotations

import torch


def kept_in_fp32(model: torch.nn.Module, dtype: torch.dtype) -> set[str]:
    """Module names that the library's own loader keeps in fp32 when `model` is loaded in `dtype`."""
    if dtype == torch.float32:
        return set()
    from diffusers import ModelMixin

    names = set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    if isinstance(model, ModelMixin) or dtype == torch.float16:
        names |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    return names


def cast_like_from_pretrained(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast `model`'s floating-point parameters and buffers to `dtype` in place, except those of the modules its
    library keeps in fp32 (a parameter or buffer whose dotted name has one of their names as a part, diffusers'
    loading rule), which become fp32."""
    keep = kept_in_fp32(model, dtype)
    for module_name, module in model.named_modules():
        for tensors in (module._parameters, module._buffers):
            for key, tensor in tensors.items():
                if tensor is None or not tensor.is_floating_point():
                    continue
                parts = f"{module_name}.{key}".split(".")
                target = torch.float32 if any(name in parts for name in keep) else dtype
                if tensor.dtype == target:
                    continue
                if isinstance(tensor, torch.nn.Parameter):
                    tensor.data = tensor.data.to(target)
                else:
                    tensors[key] = tensor.to(target)
    return model
