"""The pretrained `mini` backbone: shipped weights, stock loading, bad weights, pretraining's folder rules and an
end-to-end pretraining, the generated benchmark's tasks."""

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arcvdm.errors import ArcvdmError

MINI = Path(__file__).resolve().parents[1] / "arcvdm" / "backbones" / "mini"
MEMORISED_TASK = "fill-border"  # a demo task the shipped weights memorise (docs/mini.md)


def _card() -> dict:
    return json.loads((MINI / "model_card.json").read_text())


def test_shipped_files_match_their_recorded_sha256():
    from arcvdm.backbones.mini_card import sha256

    files = _card()["files"]
    assert {"transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= set(files)
    assert sum(e["bytes"] for name, e in files.items() if name.endswith(".safetensors")) <= 8 * 2**20
    for name, entry in files.items():
        assert sha256(MINI / name) == entry["sha256"], name


def test_a_stock_pipeline_loads_the_shipped_folder():
    import torch
    from diffusers import CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline.from_pretrained(MINI, dtype=torch.float32)
    assert pipe.vae_scale_factor_spatial == 4 and pipe.transformer.config.patch_size_t == 2
    assert pipe.transformer.config.ofs_embed_dim and pipe.transformer.config.use_rotary_positional_embeddings
    assert pipe.transformer.dtype == torch.float32


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
def test_bad_weights_are_one_line_naming_the_file_and_the_rebuild(tmp_path, damage):
    from arcvdm.backbones import load_backbone

    folder = tmp_path / "mini"
    shutil.copytree(MINI, folder)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    with pytest.raises(ArcvdmError) as e:
        load_backbone(str(folder), "cpu", "fp32")
    message = str(e.value)
    assert "\n" not in message and str(weights) in message and "arcvdm backbone pretrain-mini" in message


def test_pretrain_refuses_a_folder_holding_something_else(tmp_path):
    from typer.testing import CliRunner

    from arcvdm.cli import app

    (tmp_path / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(tmp_path), "--minutes", "0.01"])
    assert result.exit_code != 0 and "nothing was overwritten" in str(result.exception)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"


def test_pretraining_runs_end_to_end_and_its_folder_loads(tmp_path):
    """A tiny budget (a few steps per stage): the same code as the default, down to the card and the stock loader."""
    from typer.testing import CliRunner

    from arcvdm.backbones import load_backbone
    from arcvdm.cli import app
    from arcvdm.backbones.mini_card import sha256
    from arcvdm.pretrain.stages import Recipe

    out = tmp_path / "mini"
    result = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(out), "--minutes", "0.01", "--seed", "3"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["recipe"] == asdict(Recipe(seed=3).scaled(0.01)) and card["recipe"]["transformer_steps"] < 10
    assert {"vae_round_trip", "vae_round_trip_transitions", "vae_final_loss", "decoder_final_loss",
            "transformer_final_loss"} <= set(card["metrics"])
    assert all(sha256(out / name) == e["sha256"] for name, e in card["files"].items())
    assert not (out / ".pretrain").exists()
    backbone = load_backbone(str(out), "cpu", "fp32")
    assert backbone.pipe.vae_scale_factor_spatial == 4
    rerun = CliRunner().invoke(app, ["backbone", "pretrain-mini", "--out", str(out), "--minutes", "0.01"])
    assert rerun.exit_code != 0 and "finished pretraining" in str(rerun.exception)


class _StandInVAE(torch.nn.Module):
    """Pixels as latents. `hold_first`: decodes every frame as the first one, as a decoder that blends the input into
    the output at its worst."""

    def __init__(self, hold_first: bool):
        super().__init__()
        self.hold_first, self.unused = hold_first, torch.nn.Parameter(torch.zeros(1))

    def encode(self, pixels):
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: pixels))

    def decode(self, z):
        return SimpleNamespace(sample=z[:, :, :1].expand_as(z) if self.hold_first else z)


def test_the_vae_check_reads_transitions_back_from_their_last_frame(samples_dir):
    """Held-still grids pass through a decoder that repeats the first frame; transitions must not."""
    from arcvdm.pretrain.vae_check import fitting_grids, round_trip_tasks
    from arcvdm.tasks import load_tasks

    # Same-shape pairs only: read at the output's shape, their first frame gives the input back, never the output.
    tasks = [t for t in load_tasks(samples_dir) if all(p.input.shape == p.output.shape for p in t.train + t.test if p.output)]
    assert len(tasks) >= 3
    grids = sum(len(fitting_grids(t)) for t in tasks)
    pairs = sum(1 for t in tasks for p in t.train + t.test if p.output is not None)
    exact = round_trip_tasks(_StandInVAE(False), tasks, progress=False, pairs=True).summary()
    assert (exact["pairs"], exact["exact"]) == (pairs, pairs)
    held = {unit: round_trip_tasks(_StandInVAE(True), tasks, progress=False, pairs=unit == "pairs").summary()
            for unit in ("grids", "pairs")}
    assert (held["grids"]["grids"], held["grids"]["exact"]) == (grids, grids)
    assert held["pairs"]["exact"] == 0 and len(held["pairs"]["failures"]) == min(pairs, 20)


def test_bench_tasks_cover_every_family_inside_the_canvas_and_repeat_by_seed():
    from arcvdm.pretrain.bench import bench_tasks, family_of
    from arcvdm.pretrain.generator import FAMILIES, INSIDE, OUTSIDE

    tasks = bench_tasks(2 * len(FAMILIES), seed=1)
    assert {family_of(t.id) for t in tasks} == set(FAMILIES) == set(INSIDE) | set(OUTSIDE)
    assert all(2 <= len(t.train) <= 4 and 1 <= len(t.test) <= 2 for t in tasks)
    assert all(max(g.shape) <= 10 and p.input != p.output for t in tasks for p in t.train + t.test for g in (p.input, p.output))
    assert [t.to_dict() for t in bench_tasks(len(FAMILIES), seed=1)] == [t.to_dict() for t in tasks[: len(FAMILIES)]]
    assert [t.to_dict() for t in bench_tasks(3, seed=2)] != [t.to_dict() for t in tasks[:3]]


def test_a_lora_on_the_shipped_mini_memorises_a_demo_task(tmp_path, samples_dir):
    """The chain learns: videos -> LoRA trainer -> sampler -> codec -> selection. With the shipped weights and the
    `mini` preset, every train pair of a demo task comes back exactly at some checkpoint: a coloured border drawn
    around a grid the LoRA has to read (the shipped weights reproduce it at steps 150 and 200; docs/mini.md). A break in
    the trainer, sampler, codec or selection fails it."""
    from typer.testing import CliRunner

    from arcvdm.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--tasks", MEMORISED_TASK, "--preset", "mini", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "problems" / f"{MEMORISED_TASK}.json").read_text())
    assert record["status"] == "done"
    exact = [c["step"] for c in record["checkpoints"] if all(e["correct"] for e in c["train"])]
    assert exact, [[e["prediction"] for e in c["train"]] for c in record["checkpoints"]]


def test_a_task_is_determined_only_when_its_train_pairs_leave_one_answer():
    """One train row [1 2] -> [2 1] fits a left-right flip and a half turn, which disagree on a two-row test input;
    a second pair rules the half turn out. A colour permutation fixes only the colours its train inputs show."""
    import numpy as np

    from arcvdm.pretrain.determinacy import determined, drawn_rules
    from arcvdm.tasks import Task

    def task(family, train, test):
        pairs = [{"input": a, "output": b} for a, b in train]
        return Task.from_dict({"train": pairs, "test": [{"input": a, "output": b} for a, b in test]}, "t", concept=family)

    square = ([[1, 2], [3, 4]], [[2, 1], [4, 3]])
    assert not determined(task("symmetry", [([[1, 2]], [[2, 1]])], [square]))
    assert determined(task("symmetry", [([[1, 2]], [[2, 1]]), ([[5], [6]], [[5], [6]])], [square]))
    shown = ([[1, 0], [2, 1]], [[3, 0], [4, 3]])
    assert determined(task("colour-permutation", [shown], [([[2, 0]], [[4, 0]])]))
    assert not determined(task("colour-permutation", [shown], [([[2, 5]], [[4, 6]])]))
    every_colour = np.arange(10, dtype=np.uint8)[None]  # recolour, the family with most parameters: all 90 drawn
    assert len({rule(every_colour).tobytes() for rule in drawn_rules("recolour")}) == 90


def test_the_decoder_stage_holds_the_drawn_share_of_grids_still():
    from arcvdm.pretrain.data import decoder_video, stream_rng, vae_video

    for i in range(20):
        moving = vae_video(stream_rng("test", 0, i))
        assert (decoder_video(stream_rng("test", 0, i), still=0.0) == moving).all()
        still = decoder_video(stream_rng("test", 0, i), still=1.0)
        held = [frame for frame in (moving[0], moving[-1]) if (still == frame).all()]
        assert held and (moving[0] != moving[-1]).any()


def test_a_test_input_shows_an_unseen_colour_when_no_train_input_shows_it():
    from arcvdm.pretrain.bench import shows_unseen_colour
    from arcvdm.tasks import Task

    task = Task.from_dict({"train": [{"input": [[1, 0]], "output": [[2, 0]]}, {"input": [[3]], "output": [[3]]}],
                           "test": [{"input": [[3, 1]], "output": [[3, 2]]}, {"input": [[4, 0]], "output": [[4, 0]]}]},
                          "t")
    # a colour only an output shows (2) does not count: the adapter was shown inputs with 1 and 3, never 4
    assert [shows_unseen_colour(task, j) for j in range(2)] == [False, True]


def test_the_bench_scores_each_side_and_counts_the_fixed_schedule(tmp_path):
    """`run_bench` on the tiny random backbone: every task runs and is scored on its side, and the fixed schedule's
    forward passes (what early stopping is measured against) are the runner's own count when nothing stops early."""
    from arcvdm.config import load_config
    from arcvdm.pretrain.bench import bench_tasks, run_bench, shows_unseen_colour

    config = load_config("smoke", {"train.steps": 4, "train.eval_every": 2, "sample.steps": 2})
    result = run_bench(tmp_path / "bench", config, n=3, seed=1, log=lambda *_: None)
    assert json.loads((tmp_path / "bench" / "bench.json").read_text()) == result
    assert result["inside"]["tasks"] + result["outside"]["tasks"] == result["all"]["tasks"] == 3
    assert sum(f["tasks"] for f in result["families"].values()) == 3
    assert result["all"]["determined"] == sum(f["determined"] for f in result["families"].values())
    assert all(set(f) == {"side", "tasks", "determined", "solved"} for f in result["families"].values())
    tasks = bench_tasks(3, 1)
    assert result["all"]["test_outputs"] == sum(len(t.test) for t in tasks)
    assert result["all"]["unseen_colour_outputs"] == sum(shows_unseen_colour(t, j) for t in tasks
                                                         for j in range(len(t.test)))
    assert result["all"]["unseen_colour_exact"] <= result["all"]["test_outputs_exact"] <= result["all"]["test_outputs"]
    records = [json.loads(p.read_text()) for p in (tmp_path / "bench" / "run" / "problems").glob("*.json")]
    assert len(records) == 3 and all(r["train_steps_run"] == r["train_steps_fixed"] for r in records)
    assert result["all"]["forward_passes_fixed"] == result["all"]["forward_passes"] == sum(
        r["forward_passes"]["total_forwards"] for r in records)


def test_a_finished_bench_rescored_counts_exact_outputs_and_near_misses_by_the_best_counted_attempt(tmp_path):
    """Attempts written into a finished bench's problem files (one exact, one at 26 of 28 cells, one at 57 of 72, two
    of the wrong shape) come back as 1 exact, 2 at >= 90% of cells and 3 at >= 75% when the same command reruns, and
    their cells split into those the rule keeps and those it changes."""
    from arcvdm.config import load_config
    from arcvdm.io import atomic_write_json
    from arcvdm.pretrain.bench import bench_tasks, run_bench

    config = load_config("smoke", {"train.steps": 2, "train.eval_every": 2, "sample.steps": 1})
    run_bench(tmp_path / "bench", config, n=3, seed=1, log=lambda *_: None)
    truth = {t.id: [p.output.array.tolist() for p in t.test] for t in bench_tasks(3, 1)}

    def off(grid, cells):  # the grid with its first `cells` cells (row-major) changed
        flat = [v for row in grid for v in row]
        flat[:cells] = [(v + 1) % 10 for v in flat[:cells]]
        return [flat[r * len(grid[0]):(r + 1) * len(grid[0])] for r in range(len(grid))]

    border, perm, crop = truth["border-0000"], truth["colour-permutation-0001"], truth["crop-0002"]
    assert [len(g) * len(g[0]) for g in perm] == [28, 72]
    attempts = {"border-0000": [([[0]], border[0])],  # exact, as the second attempt
                "colour-permutation-0001": [(off(perm[0], 2), None), (off(perm[1], 15), off(perm[1], 30))],
                "crop-0002": [([[1, 2]], None), ([[1]], None)]}  # wrong shapes: 0% of cells
    for task_id, per_output in attempts.items():
        path = tmp_path / "bench" / "run" / "problems" / f"{task_id}.json"
        record = json.loads(path.read_text())
        record["attempts"] = [{"attempt_1": a, "attempt_2": b} for a, b in per_output]
        atomic_write_json(path, record)
    inside = run_bench(tmp_path / "bench", config, n=3, seed=1, log=lambda *_: None)["inside"]
    assert (inside["test_outputs"], inside["test_outputs_exact"]) == (5, 1)
    assert (inside["test_outputs_cells_90"], inside["test_outputs_cells_75"]) == (2, 3)
    assert inside["solved"] == 1  # border-0000, its one output matched by attempt 2
    tasks = {t.id: t for t in bench_tasks(3, 1)}

    def split(task_id, j, missed):  # [right, of] kept and changed cells when the first `missed` cells are wrong
        pair = tasks[task_id].test[j]
        kept, right = (pair.input.array == pair.output.array).ravel(), np.arange(pair.output.array.size) >= missed
        return [[int((kept & right).sum()), int(kept.sum())], [int((~kept & right).sum()), int((~kept).sum())]]

    # crop changes the shape: no cell-to-cell view; the permutation's second output's best attempt misses 15 cells
    expected = np.sum([split("border-0000", 0, 0), split("colour-permutation-0001", 0, 2),
                       split("colour-permutation-0001", 1, 15)], axis=0).tolist()
    assert [inside["test_cells_kept"], inside["test_cells_changed"]] == expected
    assert 0 < expected[0][0] < expected[0][1] and 0 < expected[1][0] < expected[1][1]


def test_early_stopping_is_read_back_from_a_run_without_it(tmp_path):
    """A bench run with `train.early_stop=false` keeps every checkpoint; `forward_passes_early_stop` is what the same
    problems would cost stopped where `selection.decided` holds on them (here: a task memorised from the first
    checkpoint stops at the second, when its pass@2 window is complete)."""
    from arcvdm.config import load_config
    from arcvdm.flops import planned_forward_passes
    from arcvdm.io import atomic_write_json
    from arcvdm.pretrain.bench import bench_tasks, run_bench

    config = load_config("smoke", {"train.steps": 4, "train.eval_every": 1, "sample.steps": 1, "train.early_stop": False})
    first = run_bench(tmp_path / "bench", config, n=3, seed=1, log=lambda *_: None)["all"]
    # the random backbone memorises nothing, so nothing would stop early either
    assert first["forward_passes"] == first["forward_passes_fixed"] == first["forward_passes_early_stop"]
    path = tmp_path / "bench" / "run" / "problems" / "border-0000.json"
    record = json.loads(path.read_text())
    assert len(record["checkpoints"]) == 4
    for c in record["checkpoints"]:
        for e in c["train"]:
            e["correct"] = True
    atomic_write_json(path, record)
    again = run_bench(tmp_path / "bench", config, n=3, seed=1, log=lambda *_: None)["all"]
    task = bench_tasks(3, 1)[0]
    full, stopped = (planned_forward_passes(config, len(task.train), len(task.test), s).total for s in (4, 2))
    assert again["forward_passes"] == first["forward_passes"]  # the rerun resumed: nothing ran again
    assert again["forward_passes_early_stop"] == again["forward_passes_fixed"] - (full - stopped) > 0


@pytest.mark.parametrize("rule, correct, held_out, stop", [
    ("paper", [False, True, True, False, False, False], None, 300),  # memorised at 200: the window 200, 300
    ("paper", [False] * 6, None, 600),  # never memorised: the fallback needs the last checkpoints
    ("paper", [False] * 5 + [True], None, 600),
    ("leave-one-out", [False, True, False, True, True, False], [0, 1, 0, 1, 0, 1], 500),  # held-out right twice
])
def test_the_early_stop_step_is_the_first_decided_checkpoint(rule, correct, held_out, stop):
    from arcvdm.pretrain.bench import early_stop_step

    record = {"selection": {"k": 2, "rule": rule}, "train_steps_fixed": 600, "train_steps_run": 600,
              "checkpoints": [{"step": 100 * (i + 1), "train": [{"correct": ok}, {"correct": ok}],
                               **({"held_out": held_out[i]} if held_out else {})} for i, ok in enumerate(correct)]}
    assert early_stop_step(record, eval_every=100) == stop


def _square_task(side: int):
    from arcvdm.tasks import Task

    grid = [[(r + c) % 10 for c in range(side)] for r in range(side)]
    return Task.from_dict({"train": [{"input": grid, "output": grid}], "test": [{"input": grid, "output": grid}]}, "square")


def test_the_mini_says_at_config_time_which_canvases_it_accepts(tmp_path, samples_dir, monkeypatch):
    """The mini's rotary positions cover 64x64 (tests below): a larger canvas is one line before any model loads,
    not a "Sizes of tensors must match" inside every problem."""
    import arcvdm.backbones
    from typer.testing import CliRunner

    from arcvdm.backbones import check_config, largest_canvas
    from arcvdm.cli import app
    from arcvdm.config import load_config

    folder = tmp_path / "rebuilt"
    shutil.copytree(MINI, folder)  # a folder passed as --backbone is read the same way
    assert largest_canvas("mini") == largest_canvas(str(folder)) == (64, 64)
    assert largest_canvas("tiny") is None and largest_canvas("cogvideox1.5-5b-i2v") is None
    for height, width in ((64, 64), (48, 32), (16, 64)):
        assert check_config(load_config("mini", {"video.height": height, "video.width": width})).video.width == width
    with pytest.raises(ArcvdmError, match=r"^video.width = 80: backbone '.*rebuilt' accepts canvases up to 64x64"):
        check_config(load_config("mini", {"backbone": str(folder), "video.width": 80}))
    monkeypatch.setattr(arcvdm.backbones, "load_backbone", lambda *a, **k: pytest.fail("a model was loaded"))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(samples_dir), "--preset", "mini", "--height", "96", "--width", "96",
                                      "--out", str(out)])
    message = str(result.exception)
    assert isinstance(result.exception, ArcvdmError) and "\n" not in message, result.output
    assert message.startswith("video.height = 96: backbone 'mini' accepts canvases up to 64x64") and "64 or less" in message
    assert not out.exists()


def test_the_mini_draws_canvases_up_to_its_largest_and_breaks_past_it():
    """What `largest_canvas` reads from the configs is where the stock pipeline really stops."""
    import numpy as np

    from arcvdm.backbones import load_backbone
    from arcvdm.config import load_config
    from arcvdm.sample import generate

    backbone = load_backbone("mini", "cpu", "fp32")
    config = load_config("mini", {"sample.steps": 1, "sample.batch_size": 1})

    def draw(height, width):
        video = config.video.model_copy(update={"height": height, "width": width})  # past the config check
        return generate(backbone, [np.zeros((height, width, 3), np.uint8)], config.model_copy(update={"video": video}))

    assert np.shape(draw(48, 64)) == (1, 9, 48, 64, 3)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        draw(64, 80)


@pytest.mark.parametrize(("side", "overrides", "advice"), [
    (14, {}, "backbone 'mini' accepts canvases up to 64x64, too small for 14x14 grids in any layout: this task does not fit"),
    (10, {"codec.layout": "anchored"}, "use --layout centered (backbone 'mini' accepts canvases up to 64x64"),
    (10, {"video.height": 48, "video.width": 48}, "use --height 64 --width 64 (backbone 'mini' accepts canvases up to 64x64)"),
])
def test_the_size_advice_names_only_canvases_the_mini_accepts(side, overrides, advice):
    from arcvdm.config import load_config
    from arcvdm.solver import canvas_plan

    with pytest.raises(ArcvdmError) as e:
        canvas_plan(_square_task(side), load_config("mini", overrides))
    message = str(e.value)
    assert advice in message and "--height 96" not in message and "or larger" not in message, message


def test_a_grid_past_the_plan_gets_the_same_advice_and_unbounded_backbones_the_plain_one():
    from arcvdm.config import load_config
    from arcvdm.solver import canvas_plan

    plan = canvas_plan(_square_task(3), load_config("mini"))  # then a larger test output is drawn or decoded
    with pytest.raises(ArcvdmError, match="too small for 14x14 grids in any layout"):
        plan.geometry((14, 14))
    # A backbone without such a bound keeps the plain advice.
    with pytest.raises(ArcvdmError, match="use --height 96 --width 96 or larger"):
        canvas_plan(_square_task(14), load_config("smoke"))
