"""A prompt for each augmented view (augment.view_prompts), views that commute with the task
(augment.commuting_views, augment.commuting_colors) and test inputs shown in familiar colours (augment.familiar_colors):
`python -m pytest tests/test_view_prompts.py -q`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from arcvdm import codec
from arcvdm.augment import (COMMUTES, CONFLICTS, IDENTITY, UNKNOWN, Transform, after_colors, cell_rules, changed_colors,
                            commutation, commuting_color_maps, commuting_views, familiar_color_map, sample_transforms,
                            view_prompts)
from arcvdm.backbones import load_backbone
from arcvdm.config import NEUTRAL_PROMPT, load_config
from arcvdm.errors import ArcvdmError
from arcvdm.sample import generate
from arcvdm.solver import canvas_plan, solve, solve_problem
from arcvdm.tasks import Grid, Pair, Task, load_task
from arcvdm.train import LoraTrainer
from test_solver import run as scripted_run
from test_train_sample import transition_video

ROT90, FLIP_H = 1, 4
SWAP_12 = (0, 2, 1, 3, 4, 5, 6, 7, 8, 9)  # colours 1 and 2 trade places
SWAP_34 = (0, 1, 2, 4, 3, 5, 6, 7, 8, 9)


# --- the prompts -----------------------------------------------------------------------------------------------------

def test_each_view_has_its_own_prompt_and_the_identity_keeps_the_neutral_one():
    transforms = sample_transforms(8, 3, seed=0)
    prompts = view_prompts(NEUTRAL_PROMPT, transforms)
    assert prompts[IDENTITY] == NEUTRAL_PROMPT
    assert len(set(prompts.values())) == len(transforms) == 24
    for t in transforms[1:]:
        code = prompts[t].removeprefix(NEUTRAL_PROMPT)
        assert len(code) == 2 and code[0] == str(t.symmetry)
    # deterministic from the views themselves: the order they were drawn in does not matter
    assert view_prompts(NEUTRAL_PROMPT, transforms[::-1]) == prompts
    assert prompts[Transform(ROT90)] == NEUTRAL_PROMPT + "10"  # rot90, identity colours


def test_the_mini_text_encoder_tells_every_mini_aug_view_apart():
    """The mini reads 16 tokens and the neutral prompt takes 14: the 2-character code still fits."""
    mini = load_backbone("mini", device="cpu")
    config = load_config("mini-aug")
    prompts = list(view_prompts(config.prompt, sample_transforms(8, 3, config.augment.seed)).values())
    embeds = [mini.prompt_embeds(p)["prompt_embeds"] for p in prompts]
    assert all(not torch.equal(embeds[i], embeds[j]) for i in range(len(embeds)) for j in range(i))
    # a code the encoder truncates away is refused, not silently shared
    with pytest.raises(ArcvdmError, match="encode to the same embedding"):
        LoraTrainer(mini, [np.zeros((9, 64, 64, 3), np.uint8)] * 2, load_config("mini"),
                    prompts=[config.prompt + "123", config.prompt + "124"])


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny", device="cpu")


def count_text_encoder_calls(backbone) -> list[int]:
    calls = [0]
    backbone.pipe.text_encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_each_view_prompt_is_encoded_once_and_a_mixed_batch_gets_each_videos_own():
    backbone = load_backbone("tiny", device="cpu")  # its own: a fresh prompt cache
    calls = count_text_encoder_calls(backbone)
    config = load_config("smoke", {"video.height": 32, "video.width": 32})
    views = [IDENTITY, Transform(ROT90), Transform(FLIP_H, SWAP_12)]
    prompts = view_prompts(config.prompt, views)
    videos = [transition_video(seed) for seed in range(6)]
    per_video = [prompts[views[i % 3]] for i in range(6)]
    trainer = LoraTrainer(backbone, videos, config, prompts=per_video)
    assert calls[0] == 3  # the neutral prompt and the two view prompts, once each
    embeds = [backbone.prompt_embeds(prompts[v])["prompt_embeds"] for v in views]
    assert all((embeds[i] - embeds[j]).abs().max() > 1e-3 for i in range(3) for j in range(i))
    LoraTrainer(backbone, videos, config, prompts=per_video)  # the next problem: nothing encoded again
    generate(backbone, [v[0] for v in videos[:3]], config, prompts=per_video[:3])
    assert calls[0] == 3

    # batches may mix views: each video is denoised under its own prompt
    indices = torch.tensor([0, 1])
    draw = backbone.draw_noise(trainer.batch(indices), torch.Generator().manual_seed(0))
    with torch.no_grad():
        mixed = trainer.loss(indices, draw).item()
        alone = [trainer.loss(indices[i : i + 1], {k: v[i : i + 1] for k, v in draw.items()}).item() for i in range(2)]
        swapped = backbone.loss(trainer.batch(indices), draw, trainer.prompts[0]).item()  # both under the neutral
    assert mixed == pytest.approx(np.mean(alone), rel=1e-5)
    assert abs(swapped - mixed) > 1e-7


# --- the solver --------------------------------------------------------------------------------------------------------

def test_the_solver_trains_and_samples_every_view_under_its_prompt(samples_dir, tmp_path):
    task = load_task(samples_dir / "flip-h.json")
    config = load_config("smoke-aug", {"train.steps": 10, "augment.view_prompts": True})
    record, learner = scripted_run(task, config, lambda step, kind, i, t: None, tmp_path)
    transforms = sample_transforms(config.augment.symmetries, config.augment.color_maps, config.augment.seed)
    prompts = view_prompts(config.prompt, transforms)
    assert [p for pair in learner.prompts_by_pair for p in pair] == [prompts[t] for _ in task.train for t in transforms]
    # every checkpoint: the train inputs under the neutral prompt, then each view's test input under its own
    names = [v["transform"] for v in record["checkpoints"][0]["test"][0]["views"]]
    by_name = {t.name: t for t in transforms}
    assert learner.prompts[0] == [config.prompt] * len(task.train) + [prompts[by_name[n]] for n in names]


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("timings", "peak_memory_bytes")}  # the machine's, not the run's


def test_a_one_view_run_is_the_same_with_and_without_view_prompts(samples_dir, tiny, tmp_path):
    task = load_task(samples_dir / "recolour.json")
    records, pictures = [], []
    for on in (False, True):
        config = load_config("smoke", {"train.steps": 2, "train.eval_every": 2, "augment.view_prompts": on})
        out = tmp_path / str(on)
        records.append(json.dumps(without_timings(solve_problem(task, config, tiny, out)), sort_keys=True))
        pictures.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert records[0] == records[1] and pictures[0] == pictures[1]


# --- a stock pipeline with the saved adapter, given the view's prompt ---------------------------------------------------

FAMILIES = {  # backbone -> (frames, side)
    "tiny": (9, 32),
    "tiny-ltx": (9, 64),
    "tiny-wan": (5, 32),
    "tiny-wan2.2": (5, 32),
}


def stock_last_frame(name: str, pipe, first: np.ndarray, prompt: str, frames: int, seed: int) -> np.ndarray:
    """The stock pipeline from a picture and a prompt text, as a diffusers user calls it: float, last frame."""
    image = Image.fromarray(first) if name.startswith("tiny-wan") else \
        torch.from_numpy(first).permute(2, 0, 1)[None].float() / 255
    side = first.shape[0]
    return pipe(image=image, prompt=prompt, height=side, width=side, num_frames=frames, num_inference_steps=2,
                guidance_scale=1.0, generator=torch.Generator().manual_seed(seed), output_type="np").frames[0][-1]


@pytest.mark.parametrize("name", FAMILIES)
def test_a_stock_pipeline_with_the_adapter_and_the_views_prompt_reproduces_the_views_prediction(name, tmp_path):
    frames, side = FAMILIES[name]
    backbone = load_backbone(name, device="cpu")
    backbone.pipe.save_pretrained(tmp_path / "pipe")
    config = load_config("smoke", {"backbone": name, "video.frames": frames, "video.height": side, "video.width": side,
                                   "sample.steps": 2, "sample.batch_size": 2, "lora.rank": 8, "lora.alpha": 16,
                                   "train.lr": 1e-2})
    view = Transform(ROT90)
    prompts = view_prompts(config.prompt, [IDENTITY, view])
    video = transition_video(0, frames, side)
    seen = np.ascontiguousarray(np.rot90(video, axes=(1, 2)))  # the same video through the view
    trainer = LoraTrainer(backbone, [video, seen], config, prompts=[prompts[IDENTITY], prompts[view]])
    trainer.train(3, progress=False)
    trainer.save_adapter(tmp_path / "adapter")
    # arcvdm samples both views in one call: frame n under its own prompt with seed 7 + n
    ours = generate(backbone, [video[0], seen[0]], config, seed=7, prompts=[prompts[IDENTITY], prompts[view]])
    image = torch.from_numpy(seen[0]).permute(2, 0, 1)[None].float() / 255
    ours_float = backbone.generate(image, backbone.prompt_embeds(prompts[view]), config, [torch.Generator().manual_seed(8)])
    assert np.array_equal(ours[1], np.clip(np.round(ours_float[0] * 255), 0, 255).astype(np.uint8))

    stock = backbone.pipeline_class().from_pretrained(tmp_path / "pipe")
    stock.set_progress_bar_config(disable=True)
    stock.load_lora_weights(tmp_path / "adapter")
    theirs = stock_last_frame(name, stock, seen[0], prompts[view], frames, seed=8)
    assert np.abs(theirs - ours_float[0, -1]).max() <= 1e-5
    # the family's text encoder tells the prompts apart, and the stock pipeline's output follows the prompt
    # (tiny-wan's cross-attention is weak: ~2e-5 on the last frame)
    embeds = [backbone.prompt_embeds(p)["prompt_embeds"] for p in prompts.values()]
    assert (embeds[0] - embeds[1]).abs().max() > 1e-3
    assert not np.array_equal(theirs, stock_last_frame(name, stock, seen[0], config.prompt, frames, seed=8))


# --- views that commute with the task ----------------------------------------------------------------------------------

def names(transforms):
    return sorted(t.name for t in transforms)


def test_flip_h_commutes_with_the_symmetries_that_commute_with_flip_h_and_with_every_colour_map(samples_dir):
    task = load_task(samples_dir / "flip-h.json")
    assert [r.symmetry for r in cell_rules(task)] == [FLIP_H]
    kept = commuting_views(task, [Transform(s) for s in range(8)] + [Transform(s, SWAP_12) for s in range(8)])
    assert names(kept) == names(Transform(s, c) for s in (0, 2, 4, 5) for c in (tuple(range(10)), SWAP_12))


def test_recolour_commutes_with_every_symmetry_and_only_with_colour_maps_that_fix_its_colours(samples_dir):
    task = load_task(samples_dir / "recolour.json")  # 1 -> 2, the rest unchanged
    assert all(commutation(task, Transform(s)) == COMMUTES for s in range(8))
    assert commutation(task, Transform(0, SWAP_12)) == CONFLICTS
    assert commutation(task, Transform(0, SWAP_34)) == COMMUTES  # 3 and 4 are left alone by the rule


def test_erase_all_commutes_with_everything_and_rules_the_pairs_do_not_pin_down_are_unknown(samples_dir):
    erase = load_task(samples_dir / "erase-all.json")
    everything = sample_transforms(8, 3, seed=0)
    assert commuting_views(erase, everything) == everything
    for name in ("gravity", "fill-border", "majority-colour"):
        task = load_task(samples_dir / f"{name}.json")
        assert cell_rules(task) == []
        assert {commutation(task, t) for t in everything[1:]} == {UNKNOWN}
        assert commuting_views(task, everything) == [IDENTITY]


def pairs_task(*pairs) -> Task:
    return Task(id="t", train=[Pair(input=Grid(x), output=Grid(y)) for x, y in pairs],
                test=[Pair(input=Grid([[1]]), output=Grid([[1]]))])


def test_a_view_that_maps_a_train_input_onto_a_train_input_is_judged_by_their_outputs():
    """Gravity down, which no cell rule explains: the mirror of pair 0 is pair 1, outputs mirrored too."""
    x0, y0 = [[0, 0], [1, 0], [0, 0]], [[0, 0], [0, 0], [1, 0]]
    x1, y1 = [[0, 0], [0, 1], [0, 0]], [[0, 0], [0, 0], [0, 1]]
    down = pairs_task((x0, y0), (x1, y1))
    assert cell_rules(down) == []
    assert commutation(down, Transform(FLIP_H)) == COMMUTES
    assert commutation(down, Transform(5)) == CONFLICTS  # flip-v keeps x0 but turns y0 upside down
    assert commutation(down, Transform(2)) == CONFLICTS  # rot180 maps x0 onto x1, y0 not onto y1
    assert commutation(down, Transform(0, SWAP_12)) == UNKNOWN  # recoloured inputs are no train inputs
    # gravity up in the second pair: the mirror of the first contradicts it
    assert commutation(pairs_task((x0, y0), (x1, [[0, 1], [0, 0], [0, 0]])), Transform(FLIP_H)) == CONFLICTS


def test_the_solver_keeps_only_the_commuting_views_and_records_them(samples_dir, tmp_path):
    task = load_task(samples_dir / "flip-h.json")
    config = load_config("smoke-aug", {"train.steps": 10, "augment.symmetries": 8, "augment.color_maps": 1,
                                       "augment.views": 6, "augment.commuting_views": True})
    record, learner = scripted_run(task, config, lambda step, kind, i, t: None, tmp_path)
    assert sorted(record["commuting_views"]) == ["flip-h", "flip-v", "identity", "rot180"]
    assert record["training_videos"] == 4 * len(task.train)
    assert [v["transform"] for v in record["checkpoints"][0]["test"][0]["views"]] == \
        record["commuting_views"] + record["commuting_views"][:2]  # 6 views cycle through the 4 kept ones


# --- colour maps drawn to commute (augment.commuting_colors) -------------------------------------------------------

def test_the_colours_a_task_changes_are_the_ones_its_pairs_recolour_fill_or_erase(samples_dir):
    assert changed_colors(load_task(samples_dir / "recolour.json")) == {0, 1, 2}
    assert changed_colors(load_task(samples_dir / "flip-h.json")) == {0}  # moves cells, changes no colour's share
    gravity = load_task(samples_dir / "gravity.json")
    assert changed_colors(gravity) == {0}
    # a colour whose cells a pair adds (a border drawn in 5) or removes
    assert changed_colors(pairs_task(([[1, 0], [0, 0]], [[5, 5], [5, 5]]))) == {0, 1, 5}


def test_commuting_colour_maps_permute_only_untouched_colours_and_the_checker_agrees(samples_dir):
    task = load_task(samples_dir / "recolour.json")  # 1 -> 2, the rest unchanged
    maps = commuting_color_maps(task, 8, seed=0)
    assert maps[0] == tuple(range(10)) and len(set(maps)) == len(maps) == 8
    assert all(m[0] == 0 and m[1] == 1 and m[2] == 2 and sorted(m) == list(range(10)) for m in maps)
    assert all(commutation(task, Transform(0, m)) == COMMUTES for m in maps)
    assert commuting_color_maps(task, 8, seed=0) == maps and commuting_color_maps(task, 8, seed=1) != maps
    # the views carry the train inputs' untouched colours onto colours no train input shows
    shown = {int(c) for p in task.train for c in np.unique(p.input.array)}
    assert {m[c] for m in maps for c in shown - {0, 1, 2}} - shown
    # a random colour map almost never fixes both of the rule's colours: the commuting filter keeps no view
    assert commuting_views(task, sample_transforms(1, 8, seed=0)) == [IDENTITY]


def test_a_task_with_one_untouched_colour_has_no_map_but_the_identity():
    # 1 -> 2 -> ... -> 8 -> 1 and 9 unchanged; the second row rules out every symmetry but the identity
    x = [list(range(1, 10)), [1] + [0] * 8]
    task = pairs_task((x, [[c if c in (0, 9) else c % 8 + 1 for c in row] for row in x]))
    assert [r.symmetry for r in cell_rules(task)] == [0] and changed_colors(task) == set(range(9))
    assert commuting_color_maps(task, 8, seed=0) == [tuple(range(10))]


def test_the_solver_draws_the_task_s_commuting_colour_maps_and_refuses_view_prompts_with_them(samples_dir, tmp_path):
    task = load_task(samples_dir / "recolour.json")
    config = load_config("smoke-aug", {"train.steps": 10, "augment.symmetries": 1, "augment.color_maps": 4,
                                       "augment.views": 1, "augment.view_prompts": False,
                                       "augment.commuting_colors": True})
    record, _ = scripted_run(task, config, lambda step, kind, i, t: None, tmp_path)
    views = [Transform(0, m).name for m in commuting_color_maps(task, 4, seed=0)]
    assert record["commuting_views"][0] == "identity" and sorted(record["commuting_views"]) == sorted(views)
    assert record["training_videos"] == 4 * len(task.train)
    with pytest.raises(ArcvdmError, match="drop augment.view_prompts"):
        load_config("smoke-aug", {"augment.commuting_colors": True, "augment.view_prompts": True})


# --- test inputs in familiar colours (augment.familiar_colors) -----------------------------------------------------

def recolour_task(*tests) -> Task:
    """1 -> 2 on every cell, 3 and 4 untouched; the train inputs show 0, 1, 3 and 4 (4 on the most cells)."""
    def pair(x):
        return Pair(input=Grid(x), output=Grid([[2 if c == 1 else c for c in row] for row in x]))
    return Task(id="recolour-t", train=[pair([[1, 3], [4, 4]]), pair([[3, 1], [0, 4]])], test=[pair(x) for x in tests])


def test_a_familiar_colour_map_swaps_unseen_colours_for_shown_untouched_ones_and_commutes():
    task = recolour_task([[1, 6], [7, 7]], [[1, 6], [4, 3]], [[1, 3], [4, 0]], [[2, 6], [0, 0]])
    first = familiar_color_map(task, 0)  # 7 (two cells) takes 4, the most shown; 6 takes 3; 1 stays (the rule's)
    assert first.colors == (0, 1, 2, 6, 7, 5, 3, 4, 8, 9) and first.symmetry == 0
    shown = {int(c) for p in task.train for c in np.unique(p.input.array)}
    assert {int(c) for c in np.unique(first.apply(task.test[0].input).array)} <= shown
    assert commutation(task, first) == COMMUTES and first.invert(first.apply(task.test[0].input)) == task.test[0].input
    # 6 is unseen but 3 and 4, the familiar colours, are in the grid already: nothing free to swap with
    assert familiar_color_map(task, 1) == IDENTITY
    assert familiar_color_map(task, 2) == IDENTITY  # every colour seen
    # 2 shows in no train input but is the rule's target, which the map must not move
    assert familiar_color_map(task, 3).colors[2] == 2 and familiar_color_map(task, 3).colors[6] == 4
    rot = Transform(1, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    grid = task.test[0].input
    assert after_colors(rot, first).apply(grid) == rot.apply(first.apply(grid))


class ColourBlindLearner:
    """Stand-in for an adapter that learned recolour 1 -> 2 on the colours its train inputs show, and draws a colour
    it never saw as 0: it reads each first frame back through the codec."""

    def __init__(self, task, config):
        self.plan, self.shape = canvas_plan(task, config), task.test[0].input.shape
        self.shown = {int(c) for p in task.train for c in np.unique(p.input.array)}
        self.seen_frames = []

    def train_until(self, step, held_out=None):
        pass

    def predict(self, first_frames, seed, prompts):
        out = []
        for frame in first_frames:
            grid = codec.decode(frame, self.plan, self.shape).grid.array
            self.seen_frames.append(grid)
            drawn = np.where(grid == 1, 2, np.where(np.isin(grid, list(self.shown)), grid, 0))
            out.append(codec.render(drawn, self.plan))
        return out


@pytest.mark.parametrize("views", [1, 2])
@pytest.mark.parametrize("familiar", [False, True])
def test_the_solver_shows_a_test_input_in_familiar_colours_and_maps_the_answer_back(familiar, views, tmp_path):
    task = recolour_task([[1, 6], [7, 7]])
    config = load_config("smoke", {"train.steps": 10, "train.eval_every": 10, "augment.familiar_colors": familiar,
                                   "augment.views": views})  # 2: two samples of the untransformed view, voted
    learners = []
    record = solve(task, config, lambda videos, prompts: learners.append(ColourBlindLearner(task, config)) or learners[0],
                   tmp_path / "p")
    answer = task.test[0].output
    test_entry = record["checkpoints"][0]["test"][0]
    test_frame = learners[0].seen_frames[-1]  # the last frame of the batch: the test input
    if views == 2:  # the familiar colour map is not a view: both samples count as the untransformed view's (ties)
        assert [(v["count"], v["identity_votes"]) for v in record["votes"][0]] == [(2, 2)]
    else:
        assert record["votes"] is None
    if familiar:
        assert np.array_equal(test_frame, [[1, 3], [4, 4]])  # 6 -> 3 and 7 -> 4, colours the adapter knows
        assert record["attempts"][0]["attempt_1"] == answer.root
        assert test_entry["transform"] == "identity+c126753489"
    else:
        assert np.array_equal(test_frame, task.test[0].input.array)
        assert record["attempts"][0]["attempt_1"] == [[2, 0], [0, 0]] != answer.root
        assert "transform" not in test_entry


# --- the vision suite ----------------------------------------------------------------------------------------------

def test_picture_views_are_the_grid_symmetries_and_invert_exactly():
    from arcvdm.augment import picture_symmetries, picture_view

    grid = np.random.default_rng(0).integers(0, 10, (3, 5))
    picture = np.random.default_rng(1).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    for s in range(8):
        assert np.array_equal(picture_view(grid[..., None], s)[..., 0], Transform(s).apply(grid))
        assert np.array_equal(picture_view(picture_view(picture, s), s, inverse=True), picture)
    square, wide = picture_symmetries(8, 0, 64, 64), picture_symmetries(8, 0, 48, 64)
    assert square[0] == wide[0] == 0 and sorted(square) == list(range(8))
    assert sorted(wide) == [0, 2, 4, 5]  # the views that keep a non-square frame's shape


def vision_run(tmp_path, family, *settings):
    from typer.testing import CliRunner

    from arcvdm.cli import app

    out = tmp_path / family
    args = ["vision", "run", family, "--data", "synthetic", "--shots", "1", "--seeds", "1", "--eval", "1",
            "--preset", "vision-smoke", "--steps", "2", "--out", str(out), *[f"--set={s}" for s in settings]]
    result = CliRunner().invoke(app, args)
    problem = out / "problems" / f"{family}-n1-seed0.json"
    return result, json.loads(problem.read_text()) if problem.is_file() else None


def test_vision_views_train_and_sample_each_view_under_its_prompt(tmp_path):
    result, one = vision_run(tmp_path / "one", "flip-horizontal")
    assert result.exit_code == 0, result.output
    _, same = vision_run(tmp_path / "same", "flip-horizontal", "augment.view_prompts=true")
    assert without_timings(one) == without_timings(same)  # one view: the view prompts change nothing
    result, four = vision_run(tmp_path / "four", "flip-horizontal", "augment.symmetries=4", "augment.views=4",
                              "augment.view_prompts=true")
    assert result.exit_code == 0, result.output
    assert four["views"][0] == "identity" and len(set(four["views"])) == 4
    assert four["sampler_calls"] == 4 * one["sampler_calls"]
    assert four["metrics"] != one["metrics"]


def test_vision_views_refuse_what_would_change_a_pairs_meaning(tmp_path):
    result, _ = vision_run(tmp_path, "grid-classification", "augment.symmetries=2")
    assert result.exit_code != 0 and "views do not apply to grid-classification" in result.output
    result, _ = vision_run(tmp_path, "binary-segmentation", "augment.color_maps=2")
    assert result.exit_code != 0 and "colour permutations are for ARC grids" in result.output
