"""What fresh stage-2 videos cost next to a training step (docs/mini.md, "Towards a mini that generalises").

    python runners/mini_fresh_cost.py [--recipe cpu|gpu] [--batch N] [--canvas PX --layout NAME] [--steps 5]

At the recipe's transformer size and a batch of N videos, on this machine: generating the videos (one process),
encoding them with the VAE (what `fresh_videos` adds to every step: the batch in one VAE call, as pretraining does,
and one video a call, as the pool is encoded), and one stage-2 training step (loss, backward, AdamW) under the same
bf16 autocast as pretraining, and the FLOPs of that step (the transformer's, by torch's counter) and of the whole
stage 2. Medians over --steps repetitions; printed, not tested.
"""

import argparse
import statistics
import time
from dataclasses import replace
from functools import partial

import torch

from arcvdm.backbones import family_class
from arcvdm.backbones.mini_architecture import FRAMES, build_mini_pipeline
from arcvdm.config import NEUTRAL_PROMPT
from arcvdm.flops import TRAIN_STEP_FORWARDS
from arcvdm.pretrain.stages import RECIPES, fresh_step_data


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="cpu", choices=list(RECIPES))
    parser.add_argument("--batch", type=int, default=None, help="videos per step (default: the recipe's)")
    parser.add_argument("--canvas", type=int, default=None, help="video side in px (default: the recipe's)")
    parser.add_argument("--layout", default=None, help="grid layout of the videos (default: the recipe's)")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    recipe = RECIPES[args.recipe](0)
    recipe = replace(recipe, transformer_batch=args.batch or recipe.transformer_batch,
                     canvas=args.canvas or recipe.canvas, layout=args.layout or recipe.layout)
    pipe = build_mini_pipeline(0, recipe.canvas, num_layers=recipe.transformer_layers,
                               num_attention_heads=recipe.transformer_heads, attention_head_dim=recipe.transformer_head_dim)
    backbone = family_class("cogvideox")(pipe, "mini-cost", torch.device("cpu"), torch.float32)
    transformer = pipe.transformer.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=1e-4)
    prompt = backbone.prompt_embeds(NEUTRAL_PROMPT)
    videos, _, seed = fresh_step_data(recipe, 0)

    def encode(per_call: int):
        backbone.encode_batch = per_call
        with torch.no_grad():
            return backbone.encode_videos(list(videos), torch.Generator().manual_seed(seed))

    batch = encode(len(videos))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = backbone.loss(batch, backbone.draw_noise(batch, torch.Generator().manual_seed(seed)), prompt)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    generate_s = median_seconds(lambda: fresh_step_data(recipe, 1), args.steps)
    batched_s, single_s = (median_seconds(partial(encode, n), args.steps) for n in (len(videos), 1))
    step_s = median_seconds(step, args.steps)
    params = sum(p.numel() for p in transformer.parameters())
    step_flops = backbone.forward_flops(FRAMES, recipe.canvas, recipe.canvas) * len(videos) * TRAIN_STEP_FORWARDS
    print(f"recipe {args.recipe}: transformer {params / 1e6:.2f} M parameters, batch {recipe.transformer_batch}, "
          f"{recipe.canvas}x{recipe.canvas} {recipe.layout}, torch threads {torch.get_num_threads()}; a training step "
          f"{step_flops / 1e12:.3f} TFLOP, stage 2 ({recipe.transformer_steps} steps) {step_flops * recipe.transformer_steps / 1e15:.2f} PFLOP")
    print(f"  generate {generate_s * 1e3:.0f} ms | encode {batched_s * 1e3:.0f} ms (one video a call: "
          f"{single_s * 1e3:.0f} ms) | training step {step_s * 1e3:.0f} ms | encode / step {batched_s / step_s:.2f}")


if __name__ == "__main__":
    main()
