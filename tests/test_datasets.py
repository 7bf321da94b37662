"""Dataset registry, resolution order and offline download: `python -m pytest tests/test_datasets.py -q`."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from arcvdm.datasets import DATASETS, cache_dir, content_sha256, download, load_dataset, load_task_spec, resolve
from arcvdm.errors import ArcvdmError, UnknownNameError

COUNTS = {"arc-agi-1/training": 400, "arc-agi-1/evaluation": 400, "arc-agi-2/training": 1000, "arc-agi-2/evaluation": 120, "conceptarc": 160}


def test_registry_names():
    assert DATASETS.names() == list(COUNTS)
    with pytest.raises(UnknownNameError, match="Did you mean 'conceptarc'"):
        DATASETS.get("conceptark")


@pytest.mark.parametrize("name", list(COUNTS))
def test_pinned_checksums_match_the_shared_data(datasets_dir, name):
    assert content_sha256(datasets_dir / DATASETS.get(name).path) == DATASETS.get(name).sha256


def test_datasets_load_with_counts_and_concepts(datasets_dir):
    assert len(load_dataset("arc-agi-1/evaluation")) == 400
    concept = load_dataset("conceptarc")
    assert len(concept) == COUNTS["conceptarc"] and not concept.errors
    assert len({t.concept for t in concept}) == 16
    assert not any("Minimal" in t.id for t in concept)
    assert concept["Center1"].concept == "Center"


def test_resolution_order_data_dir_then_env_then_cache(tmp_path, monkeypatch, datasets_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "arcvdm" / "datasets"
    assert resolve("arc-agi-2/evaluation") == datasets_dir / "arc-agi-2" / "evaluation"  # ARCVDM_DATA from conftest
    mine = tmp_path / "mine" / "arc-agi-2" / "evaluation"
    mine.mkdir(parents=True)
    assert resolve("arc-agi-2/evaluation", tmp_path / "mine") == mine
    monkeypatch.delenv("ARCVDM_DATA")
    assert resolve("arc-agi-2/evaluation") is None
    cached = cache_dir() / "arc-agi-2" / "evaluation"
    cached.mkdir(parents=True)
    assert resolve("arc-agi-2/evaluation") == cached
    with pytest.raises(ArcvdmError, match="arcvdm datasets download arc-agi-1/training"):
        load_dataset("arc-agi-1/training")


def test_load_task_spec(datasets_dir, samples_dir):
    assert load_task_spec("arc-agi-1/evaluation:00576224").id == "00576224"
    assert load_task_spec("conceptarc:Copy3").concept == "Copy"
    assert load_task_spec(str(samples_dir / "flip-h.json")).id == "flip-h"
    with pytest.raises(ArcvdmError, match="no task with id 'zzz'"):
        load_task_spec("arc-agi-1/evaluation:zzz")
    with pytest.raises(UnknownNameError, match="Did you mean"):
        load_task_spec("arc-agi-1/evalution:00576224")


def _upstream_zip(path, datasets_dir, commit, tamper=False):
    """A zip laid out like GitHub's archive of fchollet/ARC-AGI at `commit`, built from the shared data."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"ARC-AGI-{commit}/README.md", "readme")
        for split in ("training", "evaluation"):
            for i, file in enumerate(sorted((datasets_dir / "arc-agi-1" / split).glob("*.json"))):
                data = file.read_bytes()
                if tamper and split == "evaluation" and i == 7:
                    data = data.replace(b"0", b"5", 1)
                z.writestr(f"ARC-AGI-{commit}/data/{split}/{file.name}", data)
    return path


def test_download_from_local_archive_verifies_and_resolves(tmp_path, monkeypatch, datasets_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ARCVDM_DATA")
    source = DATASETS.get("arc-agi-1/evaluation").source
    archive = _upstream_zip(tmp_path / "a.zip", datasets_dir, source.commit)
    installed = download("arc-agi-1/evaluation", archive.as_uri())  # a file:// URL goes through urllib
    assert installed == [cache_dir() / "arc-agi-1" / "training", cache_dir() / "arc-agi-1" / "evaluation"]
    assert resolve("arc-agi-1/evaluation") == cache_dir() / "arc-agi-1" / "evaluation"
    assert len(load_dataset("arc-agi-1/training")) == 400
    assert [p.name for p in cache_dir().iterdir()] == ["arc-agi-1"]  # no temporary folder left behind
    download("arc-agi-1/training", str(archive))  # a plain path, and installing again replaces cleanly
    assert len(load_dataset("arc-agi-1/evaluation")) == 400


def test_tampered_archive_fails_and_installs_nothing(tmp_path, monkeypatch, datasets_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    source = DATASETS.get("arc-agi-1/evaluation").source
    archive = _upstream_zip(tmp_path / "a.zip", datasets_dir, source.commit, tamper=True)
    with pytest.raises(ArcvdmError, match="arc-agi-1/evaluation: checksum mismatch"):
        download("arc-agi-1/evaluation", str(archive))
    assert list(cache_dir().iterdir()) == []


def test_wrong_or_missing_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(ArcvdmError, match="not a zip archive"):
        download("conceptarc", str(not_zip))
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("repo-abc/README.md", "x")
    with pytest.raises(ArcvdmError, match="no JSON files under corpus"):
        download("conceptarc", str(tmp_path / "empty.zip"))
    with pytest.raises(ArcvdmError, match="cannot download"):
        download("conceptarc", (tmp_path / "absent.zip").as_uri())
    assert list(cache_dir().iterdir()) == []


def test_the_suite_ignores_the_callers_environment(tmp_path, datasets_dir):
    # Another valid copy under the caller's $ARCVDM_DATA, and a cache that holds a dataset: neither may leak in.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "arc-agi-2" / "evaluation").mkdir(parents=True)
    (tmp_path / "xdg" / "arcvdm" / "datasets" / "arc-agi-1" / "training").mkdir(parents=True)
    env = {**os.environ, "ARCVDM_DATA": str(elsewhere), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    test = f"{Path(__file__)}::test_resolution_order_data_dir_then_env_then_cache"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                            env=env, capture_output=True, text=True, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stdout[-2000:]
