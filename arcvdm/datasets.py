"""The published ARC datasets by name: where they resolve (--data-dir, ARCVDM_DATA, user cache) and their download.

Each dataset is pinned to an upstream commit. GitHub's archive bytes are not reproducible, so the checksum is
over the content: sha256 of the sorted lines "<relative path> <sha256 of the file>" for every extracted JSON
file (computed from the upstream blobs at the pinned commit).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from arcvdm.errors import ArcvdmError, TaskFormatError
from arcvdm.registry import Registry
from arcvdm.tasks import Task, TaskSet, load_task, load_tasks


@dataclass(frozen=True)
class Source:
    """An upstream repository at a pinned commit; `folder` is where its data lives under the data root."""

    folder: str
    repo: str
    commit: str
    license: str

    @property
    def archive_url(self) -> str:
        return f"https://github.com/{self.repo}/archive/{self.commit}.zip"


@dataclass(frozen=True)
class Dataset:
    """One split: `path` inside the data root, `upstream` the folder inside the repository, the content hash."""

    name: str
    source: Source
    path: str
    upstream: str
    sha256: str
    concept_from_folder: bool = False
    attempts: int = 2  # the benchmark's k: attempts per test output its headline counts (pass@k)


ARC_AGI_1 = Source("arc-agi-1", "fchollet/ARC-AGI", "399030444e0ab0cc8b4e199870fb20b863846f34", "Apache-2.0")
ARC_AGI_2 = Source("arc-agi-2", "arcprize/ARC-AGI-2", "f3283f727488ad98fe575ea6a5ac981e4a188e49", "Apache-2.0")
CONCEPTARC = Source("conceptarc", "victorvikram/ConceptARC", "b22ef526b4656679816b7811e78f55cc24d736d7", "MIT")

DATASETS: Registry[Dataset] = Registry("dataset")
for _d in (
    Dataset("arc-agi-1/training", ARC_AGI_1, "arc-agi-1/training", "data/training", "7a43d29463a8dd961737a6e1677cacb309b0df4dd856b545685383954e3746a4"),
    Dataset("arc-agi-1/evaluation", ARC_AGI_1, "arc-agi-1/evaluation", "data/evaluation", "f54c3d3c57cf12357a03453805b2305c33dd1f4e1da51e97203761fd3e3e5884"),
    Dataset("arc-agi-2/training", ARC_AGI_2, "arc-agi-2/training", "data/training", "04cadd406e7bbddc6a0a6f3eb426bde68448a17f4d66b30be3dad97c6b42efef"),
    Dataset("arc-agi-2/evaluation", ARC_AGI_2, "arc-agi-2/evaluation", "data/evaluation", "164cd23ace795fa059c79c64a64a326b285508469d0355362c8ac891ef5994d2"),
    # The 160 corpus tasks of the paper; MinimalTasks (attention checks for human participants) are left out.
    Dataset("conceptarc", CONCEPTARC, "conceptarc/corpus", "corpus", "7e662ecb8694fa93e29668ba73ee6997edbeca80efe484f14806aad33610149d", True, 3),
):
    DATASETS.add(_d.name, _d)


def cache_dir() -> Path:
    """The user cache for downloaded data: $XDG_CACHE_HOME/arcvdm/datasets, else ~/.cache/arcvdm/datasets."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "arcvdm" / "datasets"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where datasets are looked up, in order: `data_dir`, then $ARCVDM_DATA, then the user cache."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("ARCVDM_DATA"):
        roots.append(Path(os.environ["ARCVDM_DATA"]))
    roots.append(cache_dir())
    return roots


def resolve(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder holding dataset `name` in the first data root that has it, or None."""
    dataset = DATASETS.get(name)
    for root in data_roots(data_dir):
        folder = root / dataset.path
        if folder.is_dir():
            return folder
    return None


def _require(name: str, data_dir: str | os.PathLike | None) -> Path:
    folder = resolve(name, data_dir)
    if folder is None:
        looked = ", ".join(str(r) for r in data_roots(data_dir))
        raise ArcvdmError(f"dataset {name} is not in {looked}: run `arcvdm datasets download {name}` or pass --data-dir")
    return folder


def load_dataset(spec: str, data_dir: str | os.PathLike | None = None) -> TaskSet:
    """A registered dataset name (see DATASETS) or a path to a task file or folder."""
    if spec in DATASETS:
        return load_tasks(_require(spec, data_dir), concept_from_folder=DATASETS.get(spec).concept_from_folder, name=spec)
    if Path(spec).exists():
        return load_tasks(spec)
    raise ArcvdmError(f"{spec!r} is neither a file or folder nor a dataset. {DATASETS.unknown_message(spec)}")


def load_task_spec(spec: str, data_dir: str | os.PathLike | None = None) -> Task:
    """One task from a file path or `DATASET:TASK_ID` (for example `arc-agi-1/evaluation:00576224`)."""
    if Path(spec).is_file() or ":" not in spec:
        return load_task(spec)
    name, task_id = spec.rsplit(":", 1)
    folder = _require(DATASETS.get(name).name, data_dir)
    matches = sorted(folder.rglob(f"{task_id}.json")) if task_id and "/" not in task_id else []
    if not matches:
        raise TaskFormatError(f"{name}: no task with id {task_id!r} in {folder}; list ids with `ls {folder}`")
    file = matches[0]
    return load_task(file, concept=file.parent.name if DATASETS.get(name).concept_from_folder else None)


def content_sha256(folder: str | os.PathLike) -> str:
    """sha256 over the sorted lines "<relative path> <sha256 of file>" of every JSON file below `folder`."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for rel in sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json")):
        digest.update(f"{rel} {hashlib.sha256((folder / rel).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def count_tasks(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.json"))


def download(name: str, archive: str | None = None, cache: Path | None = None) -> list[Path]:
    """Fetch the source holding dataset `name` (every split of it), verify each split's checksum, install atomically.

    `archive` is a local zip file or URL (file:// works) to use instead of the GitHub archive at the pinned
    commit. On a checksum mismatch nothing is left in the cache. Returns the installed folders.
    """
    source = DATASETS.get(name).source if name in DATASETS else _source_named(name)
    splits = [DATASETS.get(n) for n in DATASETS.names() if DATASETS.get(n).source == source]
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        zip_path = Path(tmp) / "archive.zip"
        _fetch(archive or source.archive_url, zip_path)
        staged = Path(tmp) / "staged"
        _extract(zip_path, {d.upstream: staged / d.path for d in splits}, archive or source.archive_url)
        for d in splits:
            got = content_sha256(staged / d.path)
            if got != d.sha256:
                raise ArcvdmError(
                    f"{d.name}: checksum mismatch (content sha256 {got[:12]}..., expected {d.sha256[:12]}...) in "
                    f"{archive or source.archive_url}: the archive is not {source.repo} at {source.commit[:7]}; nothing was installed"
                )
        installed = []
        for d in splits:
            target = cache / d.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged / d.path, target)  # same file system: an atomic rename
            installed.append(target)
    return installed


def _source_named(name: str) -> Source:
    for source in (ARC_AGI_1, ARC_AGI_2, CONCEPTARC):
        if source.folder == name:
            return source
    DATASETS.get(name)  # raises the "did you mean" error
    raise AssertionError


def _fetch(url_or_path: str, dest: Path) -> None:
    if Path(url_or_path).is_file():
        shutil.copyfile(url_or_path, dest)
        return
    try:
        with urllib.request.urlopen(url_or_path, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as e:
        raise ArcvdmError(f"cannot download {url_or_path} ({e}): check the connection, or pass --archive with a local zip") from None


def _extract(zip_path: Path, targets: dict[str, Path], origin: str) -> None:
    """Extract the JSON files under each upstream folder (below the archive's single top folder) to its target."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise ArcvdmError(f"{origin} is not a zip archive: pass the GitHub archive of the pinned commit") from None
    with archive:
        found = {upstream: 0 for upstream in targets}
        for member in archive.infolist():
            parts = PurePosixPath(member.filename).parts
            if member.is_dir() or len(parts) < 2 or ".." in parts or not member.filename.endswith(".json"):
                continue
            inner = PurePosixPath(*parts[1:])  # drop "<repo>-<commit>/"
            for upstream, target in targets.items():
                if inner.is_relative_to(upstream):
                    dest = target / inner.relative_to(upstream)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(archive.read(member))
                    found[upstream] += 1
        missing = [u for u, n in found.items() if not n]
        if missing:
            raise ArcvdmError(f"{origin} has no JSON files under {', '.join(missing)}: it is not the expected repository archive")
