"""Vision data: COCO/TinyImageNet/folder adapters on tiny files, synthetic generators, families, presets:
python -m pytest tests/test_vision_data.py -q"""

import json

import numpy as np
import pytest
from PIL import Image

from arcvdm.errors import ArcvdmError
from arcvdm.vision import synthetic
from arcvdm.vision.data import coco_pool, open_data, tinyimagenet_pools
from arcvdm.vision.families import FAMILIES
from arcvdm.vision.items import mosaic
from arcvdm.vision.presets import paper_schedule, vision_config

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def coco(tmp_path):
    """COCO 2017 layout: annotations/instances_val2017.json beside val2017/ with two pictures."""
    rng = np.random.default_rng(0)
    for name in ("000000000001.jpg", "000000000002.jpg"):
        _save(tmp_path / "val2017" / name, rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    keypoints = [0] * 51
    keypoints[0:3] = [30, 10, 2]  # nose
    keypoints[15:18] = [25, 20, 2]  # left shoulder
    data = {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "height": 40, "width": 60},
                   {"id": 2, "file_name": "000000000002.jpg", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 18, "iscrowd": 0, "area": 200.0, "bbox": [10, 10, 20, 10],
             "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 100.0, "bbox": [20, 5, 20, 20],
             "segmentation": [[20, 5, 40, 5, 40, 25, 20, 25]], "num_keypoints": 2, "keypoints": keypoints},
        ],
    }
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_coco_masks_and_labels_from_polygons(coco):
    pool = coco_pool(coco, None, ["dog", "person"], keypoints=False)
    assert list(pool.keys) == [1, 2]
    dog = pool.load(0)
    assert dog.image.shape == (40, 60, 3)
    assert 150 <= dog.mask.sum() <= 260 and dog.mask[15, 20] and not dog.mask[30, 50]
    assert set(np.unique(pool.load(1).labels)) == {0, 2}  # the person is category 2 in --category order


def test_coco_keypoints_for_pose(coco):
    pool = coco_pool(coco, None, ["dog"], keypoints=True)
    assert list(pool.keys) == [2]
    person = pool.load(0)
    assert person.keypoints.shape == (1, 17, 3)
    assert person.keypoints[0, 0].tolist() == [30, 10, 2]


def test_coco_errors_name_the_file_and_the_fix(coco, tmp_path):
    with pytest.raises(ArcvdmError, match="no category 'cat'.*dog, person"):
        coco_pool(coco, None, ["cat"], keypoints=False)
    with pytest.raises(ArcvdmError, match="--images"):
        coco_pool(coco, tmp_path / "nowhere", ["dog"], keypoints=False)


def test_open_data_holds_out_eval_items_from_coco(coco):
    train, held = open_data(str(coco), FAMILIES.get("binary-segmentation"), eval_count=1, height=32, width=48, categories=["dog", "person"])
    assert len(train) == len(held) == 1 and set(train.keys) | set(held.keys) == {1, 2}


@pytest.fixture
def tinyimagenet(tmp_path):
    wnids = ["n01443537", "n04399382", "n02124075"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "words.txt").write_text("n01443537\tgoldfish\nn04399382\tteddy, teddy bear\nn02124075\tEgyptian cat\n")
    rows = []
    for label, wnid in enumerate(wnids):
        for i in range(5):
            _save(tmp_path / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", np.full((64, 64, 3), 40 * label, np.uint8))
            rows.append(f"val_{label}{i}.JPEG\t{wnid}\t0\t0\t63\t63")
            _save(tmp_path / "val" / "images" / f"val_{label}{i}.JPEG", np.full((64, 64, 3), 40 * label, np.uint8))
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(rows) + "\n")
    return tmp_path, wnids


def test_tinyimagenet_80_20_split_with_labels_in_class_order(tinyimagenet):
    root, wnids = tinyimagenet
    train, held = tinyimagenet_pools(root, wnids)
    assert len(train) == 12 and len(held) == 3
    s = held.load(2)
    assert s.label == 2 and s.image.shape == (64, 64, 3)


def test_tinyimagenet_val_layout_and_unknown_class(tinyimagenet):
    root, wnids = tinyimagenet
    import shutil

    shutil.rmtree(root / "train")
    train, held = tinyimagenet_pools(root, wnids[:2])
    assert len(train) == 8 and held.load(0).id.startswith("tin-val_")
    with pytest.raises(ArcvdmError, match="wnids.txt.*n99999999"):
        tinyimagenet_pools(root, ["n99999999"])


def test_generic_pair_and_picture_folders(tmp_path):
    for i in range(3):
        _save(tmp_path / "pairs" / "input" / f"{i}.png", np.full((8, 8, 3), i, np.uint8))
        _save(tmp_path / "pairs" / "target" / f"{i}.png", np.full((16, 16, 3), 200, np.uint8))
        _save(tmp_path / "pics" / f"{i}.jpg", np.zeros((8, 8, 3), np.uint8))
    style = FAMILIES.get("style-transfer")
    train, held = open_data(str(tmp_path / "pairs"), style, eval_count=1, height=16, width=16)
    ex = style.make_example(train.load(0), 16, 16)
    assert ex.input.shape == ex.target.shape == (16, 16, 3) and (ex.target == 200).all()
    train, held = open_data(str(tmp_path / "pics"), FAMILIES.get("flip-vertical"), eval_count=1, height=16, width=16)
    assert len(train) == 2
    with pytest.raises(ArcvdmError, match="paired targets"):
        style.make_example(train.load(0), 16, 16)
    (tmp_path / "pairs" / "target" / "2.png").unlink()
    with pytest.raises(ArcvdmError, match="'2' is in only one"):
        open_data(str(tmp_path / "pairs"), style, eval_count=1, height=16, width=16)


def test_synthetic_is_seeded_and_deterministic():
    for kind in synthetic.KINDS:
        a, b = synthetic.sample(kind, 3, 7, 48, 64), synthetic.sample(kind, 3, 7, 48, 64)
        assert (a.image == b.image).all() and a.id == b.id
        assert not (synthetic.sample(kind, 4, 7, 48, 64).image == a.image).all()


@pytest.mark.parametrize("name", FAMILIES.names())
def test_every_family_makes_pairs_of_the_right_shape_from_synthetic_data(name):
    family = FAMILIES.get(name)
    train, held = open_data("synthetic", family, eval_count=2, height=48, width=48)
    if family.tiles > 1:
        item = mosaic([train.load(i) for i in range(16)], 4, 4, 48, 48, "grid")
        assert item.cell_labels.shape == (4, 4)
    else:
        item = train.load(0)
    ex = family.make_example(item, 48, 48)
    assert ex.input.shape == ex.target.shape == (48, 48, 3)
    assert ex.input.dtype == ex.target.dtype == np.uint8
    assert not (ex.input == ex.target).all()
    assert family.evaluate([ex.target], [ex])[family.primary] == pytest.approx(1.0 if family.primary != "psnr" else 100.0)


def test_paper_schedules_and_resolutions():
    seg, grid, zoom = FAMILIES.get("binary-segmentation"), FAMILIES.get("grid-classification"), FAMILIES.get("zoom")
    assert [paper_schedule(seg, n) for n in (3, 5, 10, 30)] == [(1000, 1000), (1000, 1000), (2000, 1000), (4000, 1000)]
    assert paper_schedule(grid, 3) == (500, 500) and paper_schedule(zoom, 3) == (1200, 300)
    config = vision_config("paper-ablation", seg, 30, {"lora.targets": "vo", "train.steps": None})
    assert (config.video.height, config.video.width, config.train.steps, config.sample.steps) == (480, 720, 4000, 5)
    assert config.family == "binary-segmentation" and config.lora.targets == "vo" and config.preset == "paper-ablation"
    assert vision_config("paper", grid, 3).video.height == 256
    assert vision_config("vision-smoke", zoom, 3).backbone == "tiny"
    with pytest.raises(ArcvdmError, match="Did you mean 'paper'"):
        vision_config("papr", zoom, 3)


def test_draw_items_fixed_eval_and_per_seed_shots():
    from arcvdm.vision.runner import EVAL_STREAM, SHOTS_STREAM, draw_items

    seg, grid = FAMILIES.get("binary-segmentation"), FAMILIES.get("grid-classification")
    train, held = open_data("synthetic", seg, eval_count=2, height=32, width=32)
    ids = lambda items: [s.id for s in items]  # noqa: E731
    assert ids(draw_items(seg, held, 2, 0, EVAL_STREAM, 32, 32)) == ids(draw_items(seg, held, 2, 0, EVAL_STREAM, 32, 32))
    assert ids(draw_items(seg, train, 3, 0, SHOTS_STREAM, 32, 32)) != ids(draw_items(seg, train, 3, 1, SHOTS_STREAM, 32, 32))
    train, held = open_data("synthetic", grid, eval_count=2, height=32, width=32)
    grids = draw_items(grid, held, 3, 0, EVAL_STREAM, 32, 32)
    assert len(grids) == 3 and grids[0].image.shape == (32, 32, 3) and grids[0].cell_labels.shape == (4, 4)
    with pytest.raises(ArcvdmError, match="need 5"):
        draw_items(seg, held.subset(range(4), "small"), 5, 0, SHOTS_STREAM, 32, 32)
