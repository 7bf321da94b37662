"""Shared fixtures: the published data in ../shared (never copied into the project), offline hub, small thread count."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATASETS = SHARED / "datasets"
BASELINES = SHARED / "baselines"
SAMPLES = ROOT / "tasks_json"

# Tests resolve dataset names against ../shared/datasets (same layout as the user cache).
os.environ.setdefault("ARCVDM_DATA", str(DATASETS))


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present")
    return DATASETS


@pytest.fixture(scope="session")
def baselines_dir() -> Path:
    if not BASELINES.is_dir():
        pytest.skip("../shared/baselines is not present")
    return BASELINES


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES
