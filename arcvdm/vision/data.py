"""Where vision samples come from: COCO 2017 (pycocotools), TinyImageNet's folders, a folder of images or of
(input, target) pairs, or the synthetic generators. `open_data(spec, family, ...)` -> (train pool, eval pool)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from arcvdm.errors import ArcvdmError
from arcvdm.vision import synthetic
from arcvdm.vision.drawing import CATEGORY_COLORS, NUM_SYMBOLS
from arcvdm.vision.families import Family
from arcvdm.vision.items import Sample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SYNTHETIC_POOL = 100_000  # synthetic pools are lazy: a large index space costs nothing
EVAL_SPLIT_SEED = 0  # held-out items do not depend on the run's seed, so seeds are comparable

# The paper names TinyImageNet classes, not WordNet ids; these are our picks among the 200 (override with --classes).
PAPER_TINYIMAGENET_CLASSES = {
    "bridge": "n04366367",  # suspension bridge
    "car": "n04285008",  # sports car
    "cat": "n02124075",  # Egyptian cat
    "coffee": "n03063599",  # coffee mug
    "dog": "n02099601",  # golden retriever
    "goldfish": "n01443537",
    "teddy bear": "n04399382",
}


@dataclass(frozen=True)
class Pool:
    """Items addressed by key, loaded only when drawn (COCO and TinyImageNet are too big to hold)."""

    name: str
    keys: Sequence[Any]
    loader: Callable[[Any], Sample]

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int) -> Sample:
        return self.loader(self.keys[index])

    def subset(self, indices: Sequence[int], name: str) -> "Pool":
        return Pool(name, [self.keys[i] for i in indices], self.loader)

    def __repr__(self) -> str:
        return f"<Pool {self.name} | {len(self)} items>"


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as e:
        raise ArcvdmError(f"{path}: cannot read the picture ({e}): replace or remove the file") from None


def holdout(pool: Pool, eval_count: int) -> tuple[Pool, Pool]:
    """Split one pool into (train, eval) with a fixed permutation; eval gets `eval_count` items."""
    if len(pool) <= eval_count:
        raise ArcvdmError(f"{pool.name}: {len(pool)} items, need more than the {eval_count} held out for evaluation: add data or lower --eval")
    order = np.random.default_rng(EVAL_SPLIT_SEED).permutation(len(pool))
    return pool.subset(order[eval_count:], f"{pool.name} (train)"), pool.subset(order[:eval_count], f"{pool.name} (eval)")


# ---- synthetic ---------------------------------------------------------------------------------

def synthetic_pools(family: Family, height: int, width: int) -> tuple[Pool, Pool]:
    def loader(seed: int) -> Callable[[int], Sample]:
        return lambda i: synthetic.sample(family.synthetic, i, seed, height, width)

    keys = range(SYNTHETIC_POOL)
    return Pool(f"synthetic {family.synthetic} (train)", keys, loader(1)), Pool(f"synthetic {family.synthetic} (eval)", keys, loader(2))


# ---- COCO 2017 ---------------------------------------------------------------------------------

def coco_images_dir(annotations: Path) -> Path:
    """annotations/instances_val2017.json -> val2017/ beside the annotations folder (COCO's own layout)."""
    split = annotations.stem.rsplit("_", 1)[-1]
    return annotations.parent.parent / split


def coco_pool(annotations: Path, images: Path | None, categories: Sequence[str], keypoints: bool) -> Pool:
    """Images holding any of `categories` (labels 1..K in that order; mask = the first), or people with
    keypoints when `keypoints`."""
    from pycocotools.coco import COCO

    images = images or coco_images_dir(annotations)
    if not images.is_dir():
        raise ArcvdmError(f"{annotations}: picture folder {images} not found: pass --images PATH_TO_COCO_IMAGES")
    if len(categories) >= len(CATEGORY_COLORS):
        raise ArcvdmError(f"--category: at most {len(CATEGORY_COLORS) - 1} categories, got {len(categories)}")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        try:
            coco = COCO(str(annotations))
        except (ValueError, KeyError, OSError, RecursionError, TypeError) as e:  # RecursionError: JSON nested too deeply
            raise ArcvdmError(f"{annotations}: not a COCO annotation file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    names = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    if keypoints:
        categories = ["person"]
    missing = [c for c in categories if c not in names]
    if missing:
        raise ArcvdmError(f"{annotations}: no category {missing[0]!r}: use --category with one of {', '.join(sorted(names))}")
    cat_ids = [names[c] for c in categories]
    image_ids = sorted({i for c in cat_ids for i in coco.getImgIds(catIds=[c])})
    if keypoints:
        image_ids = [i for i in image_ids if any(a.get("num_keypoints", 0) > 0 for a in coco.loadAnns(coco.getAnnIds(imgIds=[i], catIds=cat_ids)))]
    if not image_ids:
        raise ArcvdmError(f"{annotations}: no picture with {', '.join(categories)}: pick another --category or file")

    def load(image_id: int) -> Sample:
        info = coco.loadImgs([image_id])[0]
        image = read_rgb(images / info["file_name"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=cat_ids))
        labels = np.zeros(image.shape[:2], dtype=np.int64)
        for ann in anns:
            labels[coco.annToMask(ann) > 0] = cat_ids.index(ann["category_id"]) + 1
        people = [np.array(a["keypoints"], dtype=np.float64).reshape(17, 3) for a in anns if a.get("num_keypoints", 0) > 0]
        return Sample(
            id=f"coco-{image_id}",
            image=image,
            mask=labels == 1,
            labels=labels,
            keypoints=np.stack(people) if keypoints else None,
        )

    return Pool(f"COCO {annotations.name} ({', '.join(categories)})", image_ids, load)


# ---- TinyImageNet ------------------------------------------------------------------------------

def tinyimagenet_files(root: Path, wnids: Sequence[str]) -> dict[str, list[Path]]:
    """Picture files per class, sorted: train/<wnid>/images/*.JPEG, or val/images + val/val_annotations.txt."""
    if (root / "train").is_dir():
        return {w: sorted((root / "train" / w / "images").glob("*.JPEG")) for w in wnids}
    table = root / "val" / "val_annotations.txt"
    if not table.is_file():
        raise ArcvdmError(f"{root}: neither train/<wnid>/images nor val/val_annotations.txt: point --data at tiny-imagenet-200/")
    files: dict[str, list[Path]] = {w: [] for w in wnids}
    for line in table.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] in files:
            files[fields[1]].append(root / "val" / "images" / fields[0])
    return {w: sorted(v) for w, v in files.items()}


def tinyimagenet_pools(root: Path, classes: Sequence[str] | None, per_class: int = 100, train_fraction: float = 0.8) -> tuple[Pool, Pool]:
    """The paper's protocol: 7 classes, the first `per_class` pictures each, 80% train / 20% evaluation."""
    known = (root / "wnids.txt").read_text().split()
    wnids = list(classes) if classes else list(PAPER_TINYIMAGENET_CLASSES.values())
    unknown = [w for w in wnids if w not in known]
    if unknown:
        raise ArcvdmError(f"{root / 'wnids.txt'}: no class {unknown[0]!r}: pass --classes with WordNet ids from that file")
    if len(wnids) > NUM_SYMBOLS:
        raise ArcvdmError(f"--classes: at most {NUM_SYMBOLS} classes (one symbol each), got {len(wnids)}")
    train, held = [], []
    for label, (wnid, paths) in enumerate(tinyimagenet_files(root, wnids).items()):
        paths = paths[:per_class]
        if len(paths) < 2:
            raise ArcvdmError(f"{root}: class {wnid} has {len(paths)} pictures, need at least 2")
        cut = max(1, min(len(paths) - 1, round(len(paths) * train_fraction)))
        train += [(p, label) for p in paths[:cut]]
        held += [(p, label) for p in paths[cut:]]

    def load(key: tuple[Path, int]) -> Sample:
        return Sample(id=f"tin-{key[0].stem}", image=read_rgb(key[0]), label=key[1])

    return Pool(f"TinyImageNet {root.name} (train)", train, load), Pool(f"TinyImageNet {root.name} (eval)", held, load)


# ---- generic folders ---------------------------------------------------------------------------

def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def pair_pool(folder: Path) -> Pool:
    """folder/input/NAME.* with folder/target/NAME.* (same stem): any family, targets as given."""
    inputs = {p.stem: p for p in _pictures(folder / "input")}
    targets = {p.stem: p for p in _pictures(folder / "target")}
    lonely = sorted(set(inputs) ^ set(targets))
    if lonely:
        raise ArcvdmError(f"{folder}: {lonely[0]!r} is in only one of input/ and target/: give every input a target with the same name")
    if not inputs:
        raise ArcvdmError(f"{folder}: input/ and target/ hold no pictures ({', '.join(IMAGE_SUFFIXES)})")

    def load(stem: str) -> Sample:
        image, target = read_rgb(inputs[stem]), read_rgb(targets[stem])
        if target.shape != image.shape:
            target = np.asarray(Image.fromarray(target).resize(image.shape[1::-1], Image.BILINEAR))
        return Sample(id=stem, image=image, target=target)

    return Pool(f"pairs {folder.name}", sorted(inputs), load)


def image_pool(folder: Path) -> Pool:
    files = _pictures(folder)
    if not files:
        raise ArcvdmError(f"{folder}: no pictures ({', '.join(IMAGE_SUFFIXES)}): point --data at a folder of pictures")
    return Pool(f"pictures {folder.name}", files, lambda p: Sample(id=p.stem, image=read_rgb(p)))


def open_data(
    spec: str,
    family: Family,
    *,
    eval_count: int,
    height: int,
    width: int,
    categories: Sequence[str] = ("dog",),
    classes: Sequence[str] | None = None,
    images: Path | None = None,
) -> tuple[Pool, Pool]:
    """(train pool, eval pool) for `family` from `spec`: "synthetic", a COCO annotation JSON, a TinyImageNet root
    (has wnids.txt), a folder with input/ and target/, or a folder of pictures."""
    if spec == "synthetic":
        return synthetic_pools(family, height, width)
    path = Path(spec)
    if not path.exists():
        raise ArcvdmError(f"--data {spec!r}: no such file or folder: use 'synthetic', a COCO annotation JSON or a folder")
    if (path / "wnids.txt").is_file():
        if family.tiles == 1:
            raise ArcvdmError(f"{path}: TinyImageNet feeds grid-classification only, not {family.name}")
        return tinyimagenet_pools(path, classes)
    if family.tiles > 1:
        raise ArcvdmError(f"{family.name} needs labelled pictures: --data synthetic or a TinyImageNet folder (with wnids.txt)")
    if path.is_file() and path.suffix == ".json":
        pool = coco_pool(path, images, categories, keypoints=family.needs == "keypoints")
    elif (path / "input").is_dir() and (path / "target").is_dir():
        pool = pair_pool(path)
    elif path.is_dir():
        pool = image_pool(path)
    else:
        raise ArcvdmError(f"--data {spec!r}: not a COCO annotation JSON nor a folder")
    return holdout(pool, eval_count)
