"""One-problem solver, driven by a scripted stand-in learner and once by the tiny backbone: python -m pytest tests/test_solver.py -q"""

import json

import numpy as np
import pytest

from arcvdm import codec
from arcvdm.config import load_config
from arcvdm.io import atomic_write_json
from arcvdm.errors import ArcvdmError
from arcvdm.solver import (canvas_plan, fits, inference_views, placement_plans, solve, solve_problem,
                           training_transforms, training_videos, video_views)
from arcvdm.tasks import Grid, Pair, Task, load_task



def fill(grid, colour):
    """A wrong answer of the right size (the centered layout decodes at the true output's size)."""
    return Grid.from_array(np.full(grid.shape, colour))


class ScriptedLearner:
    """Stand-in for the diffusion model: `script(step, kind, index, transform)` names the grid it 'predicts'
    (in the problem's own frame; None = an undecodable frame), drawn through the view's transform."""

    def __init__(self, task, config, script, videos_by_pair, prompts_by_pair):
        self.task, self.script, self.videos_by_pair, self.prompts_by_pair = task, script, videos_by_pair, prompts_by_pair
        self.plan = canvas_plan(task, config)
        self.step = 0
        self.calls = []
        self.prompts = []  # the prompts of every predict call
        transforms = {*training_transforms(config), *inference_views(config)}
        self.known = {}  # rendered first frame -> (kind, index, transform)
        for t in transforms:
            for kind, pairs in (("train", task.train), ("test", task.test)):
                for i, p in enumerate(pairs):
                    self.known[codec.render(t.apply(p.input), self.plan).tobytes()] = (kind, i, t)

    def train_until(self, step, held_out=None):
        self.calls.append((step, held_out))
        self.step = step

    def predict(self, first_frames, seed, prompts):
        self.prompts.append(prompts)
        out = []
        for frame in first_frames:
            kind, i, t = self.known[frame.tobytes()]
            grid = self.script(self.step, kind, i, t)
            out.append(np.zeros((8, 8, 3), np.uint8) if grid is None else codec.render(t.apply(grid), self.plan))
        return out


def run(task, config, script, tmp_path):
    learners = []

    def make(videos_by_pair, prompts_by_pair):
        learners.append(ScriptedLearner(task, config, script, videos_by_pair, prompts_by_pair))
        return learners[0]

    record = solve(task, config, make, tmp_path / task.id)
    atomic_write_json(tmp_path / f"{task.id}.json", record)  # the record must be JSON-ready
    return json.loads((tmp_path / f"{task.id}.json").read_text()), learners[0]


@pytest.fixture
def task(samples_dir):
    return load_task(samples_dir / "flip-h.json")  # 2 train pairs, 1 test


def config(**overrides):
    return load_config("smoke", {"train.steps": 40, "train.eval_every": 10, **overrides})


def truth(task, kind, i):
    return (task.train if kind == "train" else task.test)[i].output


def test_record_shape_selection_and_early_stop(task, tmp_path):
    def script(step, kind, i, t):
        right = truth(task, kind, i)
        if kind == "train":
            return right if step >= 20 else fill(right, 9)
        return {10: fill(right, 9), 20: right, 30: fill(right, 8), 40: fill(right, 9)}[step]

    record, learner = run(task, config(), script, tmp_path)
    assert record["status"] == "done" and record["task_id"] == "flip-h" and record["family"] == "arc"
    assert record["layout"] == "centered" and record["output_size_from"] == "ground-truth"
    assert [c["step"] for c in record["checkpoints"]] == [10, 20, 30]  # decided at 30: the window 20, 30 is complete
    assert record["train_steps_run"] == 30 and record["train_steps_fixed"] == 40
    assert [c[0] for c in learner.calls] == [10, 20, 30] and all(h is None for _, h in learner.calls)
    first = record["checkpoints"][0]
    assert first["train"][0] == {"prediction": fill(task.train[0].output, 9).root, "correct": False, "error": None}
    assert record["checkpoints"][1]["train"][1]["correct"] is True
    assert record["selection"]["solved_train_at"] == 20 and record["selection"]["steps"] == [20, 30]
    answer = task.test[0].output
    assert record["attempts"] == [{"attempt_1": answer.root, "attempt_2": fill(answer, 8).root}]
    assert record["votes"] is None
    assert record["sampler_calls"] == 3 * (2 + 1) and record["nfe"] == 9 * 4  # smoke: 4 sampling steps
    assert record["forward_passes"]["train_forwards"] == 30 * 2 * 3
    assert record["forward_flops"] is None  # no backbone to count with
    assert set(record["timings"]) == {"setup_s", "train_s", "sample_s", "total_s"}
    assert record["peak_memory_bytes"] > 0 and record["seed"] == 42
    images = sorted(p.name for p in (tmp_path / "flip-h").iterdir())
    assert images == sorted(["train0.gif"] + [f"step{s}-{k}.png" for s in (10, 20, 30) for k in ("train0", "train1", "test0")])

    full, learner = run(task, config(**{"train.early_stop": False}), script, tmp_path)
    assert full["train_steps_run"] == 40 and [c[0] for c in learner.calls] == [10, 20, 30, 40]
    assert full["attempts"] == record["attempts"] and full["selection"] == record["selection"]


def test_never_solved_takes_the_last_checkpoints_and_records_decode_errors(task, tmp_path):
    def script(step, kind, i, t):
        return None if kind == "test" and step == 40 else fill(truth(task, kind, i), 9)

    record, _ = run(task, config(), script, tmp_path)
    assert record["train_steps_run"] == 40 and record["selection"]["solved_train_at"] is None
    last = record["checkpoints"][-1]["test"][0]
    assert last["prediction"] is None and last["error"].startswith("decode: frame is 8x8x3")
    # window 30, 40; 40 undecodable and 30 predicts the wrong grid; no earlier distinct grid exists
    assert record["selection"]["steps"] == [30, 40]
    assert record["attempts"] == [{"attempt_1": fill(task.test[0].output, 9).root, "attempt_2": None}]


def test_leave_one_out_rotates_the_held_out_pair_and_stops_after_two_successes(task, tmp_path):
    held = {}

    def script(step, kind, i, t):
        right = truth(task, kind, i)
        if kind == "test":
            return fill(right, 8) if step == 20 else right
        # only the pair held out of the last chunk is right, and only from step 20 on
        return right if step >= 20 and held[step] == i else fill(right, 9)

    cfg = config(**{"selection.rule": "leave-one-out"})
    held.update({10: 0, 20: 1, 30: 0, 40: 1})
    record, learner = run(task, cfg, script, tmp_path)
    assert learner.calls == [(10, 0), (20, 1), (30, 0)]
    assert [c["held_out"] for c in record["checkpoints"]] == [0, 1, 0]
    sel = record["selection"]
    assert sel["rule"] == "leave-one-out" and sel["solved_held_out_at"] == 30 and sel["steps"] == [20, 30]
    assert sel["solved_train_at"] is None  # no checkpoint got both pairs right
    answer = task.test[0].output
    assert record["attempts"] == [{"attempt_1": fill(answer, 8).root, "attempt_2": answer.root}]


def test_leave_one_out_with_one_train_pair_falls_back_to_the_paper_rule(task, tmp_path):
    one = Task(id="one-pair", train=task.train[:1], test=task.test)
    def script(step, kind, i, t):
        return fill(truth(one, kind, i), 9)

    record, learner = run(one, config(**{"selection.rule": "leave-one-out"}), script, tmp_path)
    assert record["selection"]["rule"] == "paper" and record["selection"]["requested_rule"] == "leave-one-out"
    assert all(h is None for _, h in learner.calls)


def test_anchored_layout_reads_the_size_from_the_frame(task, tmp_path):
    hidden = Task(id="hidden", train=task.train, test=[Pair(input=task.test[0].input)])

    def script(step, kind, i, t):
        return truth(task, kind, i)  # the stand-in knows the answer; the solver is not told its size

    record, _ = run(hidden, config(**{"codec.layout": "anchored"}), script, tmp_path)
    assert record["output_size_from"] == "frame" and record["train_steps_run"] == 20
    assert record["attempts"][0]["attempt_1"] == task.test[0].output.root

    # centered needs the hidden output's size: refused before training, never "done" with null attempts
    with pytest.raises(ArcvdmError, match="task hidden: test 0 has no output.*use --layout anchored"):
        run(hidden, config(), script, tmp_path)


def test_augmented_views_vote_and_map_back(task, tmp_path):
    cfg = config(**{"augment.symmetries": 8, "augment.color_maps": 2, "augment.views": 4})
    views = inference_views(cfg)
    assert views[0].is_identity and len(set(views)) == 4

    def script(step, kind, i, t):
        if kind == "train":
            return truth(task, kind, i)
        # views 0 and 1 see the answer, views 2 and 3 a wrong grid: a 4-4 tie broken by the identity view
        return truth(task, kind, i) if t in views[:2] else fill(truth(task, kind, i), 9)

    record, learner = run(task, cfg, script, tmp_path)
    assert len(learner.videos_by_pair) == 2 and len(learner.videos_by_pair[0]) == 16  # 8 symmetries x 2 colour maps
    assert record["train_steps_run"] == 20 and record["sampler_calls"] == 2 * (2 + 4)
    answer, wrong = task.test[0].output, fill(task.test[0].output, 9)
    assert record["attempts"] == [{"attempt_1": answer.root, "attempt_2": wrong.root}]
    counts = record["votes"][0]
    assert [(c["grid"], c["count"], c["identity_votes"]) for c in counts] == [(answer.root, 4, 2), (wrong.root, 4, 0)]
    views_json = record["checkpoints"][0]["test"][0]["views"]
    assert [v["transform"] for v in views_json] == [v.name for v in views]
    assert [v["seed"] for v in views_json] == [42 + 2 + v for v in range(4)]  # after the 2 train inputs
    assert views_json[2]["prediction"] == wrong.root  # mapped back to the problem's own frame
    assert (tmp_path / "flip-h" / "step10-test0-view3.png").is_file()


def test_a_unanimous_vote_leaves_the_second_attempt_to_the_rule(task, tmp_path):
    cfg = config(**{"augment.symmetries": 2, "augment.views": 2})

    def script(step, kind, i, t):
        right = truth(task, kind, i)
        if kind == "train":
            return right if step >= 20 else fill(right, 9)
        return fill(right, 8) if step == 10 else right

    record, _ = run(task, cfg, script, tmp_path)
    answer = task.test[0].output
    assert record["selection"]["steps"] == [20, 30]
    assert [(v["grid"], v["count"]) for v in record["votes"][0]] == [(answer.root, 4)]
    # one distinct grid in the window's votes: the second attempt is the rule's next distinct one (step 10)
    assert record["attempts"] == [{"attempt_1": answer.root, "attempt_2": fill(answer, 8).root}]


def test_placements_render_each_pair_under_redrawn_anchored_plans(task, tmp_path):
    cfg = config(**{"codec.layout": "anchored", "augment.placements": 3, "augment.symmetries": 2})

    def script(step, kind, i, t):
        return truth(task, kind, i)

    record, learner = run(task, cfg, script, tmp_path)
    assert [len(v) for v in learner.videos_by_pair] == [2 * 3, 2 * 3]  # 2 symmetries x 3 placements
    assert record["training_videos"] == 12
    plans = placement_plans(canvas_plan(task, cfg), cfg)
    assert plans[0] == canvas_plan(task, cfg) and len({(p.cell, p.origin) for p in plans}) == 3
    first = task.train[0]
    for q, placed in enumerate(plans):  # the identity transform's videos, one per placement, the standard one first
        video = learner.videos_by_pair[0][q]
        assert np.array_equal(video[0], codec.render(first.input, placed))
        assert np.array_equal(video[-1], codec.render(first.output, placed))
    # inference stays on the standard plan: the stand-in's answers decode
    assert record["attempts"][0]["attempt_1"] == task.test[0].output.root
    assert record["checkpoints"][0]["train"][0]["correct"] is True


def test_a_placement_too_small_for_a_pair_is_skipped(tmp_path):
    big = Grid.from_array(np.arange(64).reshape(8, 8) % 10)
    task = Task(id="big", train=[Pair(input=big, output=big)], test=[Pair(input=big)])
    cfg = config(**{"codec.layout": "anchored", "augment.placements": 8})
    plan = codec.plan_for_grids([np.zeros((2, 2))], "anchored", 64, 64)  # a plan made for smaller grids
    kept = [q for q, placed in enumerate(placement_plans(plan, cfg)) if q == 0 or fits(placed, big)]
    assert 1 < len(kept) < 8  # some re-drawn plans leave an 8x8 grid cells under 4 px, some do not
    transforms = training_transforms(cfg)
    videos = training_videos(task, cfg, transforms, plan, video_views(task, cfg, transforms, plan))
    assert len(videos[0]) == len(kept)
    assert all(np.array_equal(v[0], codec.render(big, placement_plans(plan, cfg)[q])) for v, q in zip(videos[0], kept))


def test_placements_need_the_anchored_layout():
    with pytest.raises(ArcvdmError, match="augment.placements = 3 .*: add --layout anchored"):
        config(**{"augment.placements": 3})
    with pytest.raises(ArcvdmError, match="augment.placements: Input should be greater than or equal to 1"):
        config(**{"codec.layout": "anchored", "augment.placements": 0})
    assert config(**{"codec.layout": "anchored", "augment.placements": 3}).augment.placements == 3


@pytest.fixture(scope="module")
def tiny_backbone():
    pytest.importorskip("arcvdm.train")
    pytest.importorskip("arcvdm.sample")
    from arcvdm.backbones import load_backbone

    return load_backbone("tiny", "cpu")


def check_written(record, task, out):
    """What every real solve writes: a decodable-or-explained prediction per input, PNG last frames, the GIF."""
    assert record["status"] == "done" and record["train_steps_run"] in [c["step"] for c in record["checkpoints"]]
    assert record["forward_flops"] > 0 and record["peak_memory_bytes"] > 0
    assert len(record["attempts"]) == len(task.test) and set(record["attempts"][0]) == {"attempt_1", "attempt_2"}
    for c in record["checkpoints"]:
        for entry in c["train"] + c["test"]:
            assert (entry["prediction"] is None) != (entry["error"] is None)
        for j in range(len(task.test)):
            png = out / f"step{c['step']}-test{j}.png"
            assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "train0.gif").read_bytes()[:4] == b"GIF8"


def test_tiny_backbone_solves_a_sample_task(samples_dir, tiny_backbone, tmp_path):
    task = load_task(samples_dir / "flip-h.json")
    cfg = load_config("smoke")
    record = solve_problem(task, cfg, tiny_backbone, tmp_path / task.id)
    atomic_write_json(tmp_path / "flip-h.json", record)
    check_written(record, task, tmp_path / task.id)
    assert record["train_steps_fixed"] == cfg.train.steps and record["votes"] is None
    per_checkpoint = len(task.train) + len(task.test)
    assert record["sampler_calls"] == per_checkpoint * len(record["checkpoints"])
    assert record["nfe"] == record["sampler_calls"] * cfg.sample.steps


def test_tiny_backbone_augmented_leave_one_out(samples_dir, tiny_backbone, tmp_path):
    task = load_task(samples_dir / "erase-all.json")
    cfg = load_config("smoke-aug")
    record = solve_problem(task, cfg, tiny_backbone, tmp_path / task.id)
    atomic_write_json(tmp_path / "erase-all.json", record)
    check_written(record, task, tmp_path / task.id)
    assert [c["held_out"] for c in record["checkpoints"]][:2] == [0, 1]
    assert record["selection"]["rule"] == "leave-one-out"
    assert len(record["checkpoints"][0]["test"][0]["views"]) == cfg.augment.views
    votes = record["votes"][0]
    window = len(record["selection"]["steps"])
    assert sum(v["count"] for v in votes) <= window * cfg.augment.views and votes == sorted(votes, key=lambda v: -v["count"])
