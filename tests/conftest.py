"""Shared fixtures: the published data in ../shared (never copied into the project), offline hub, small thread count.

The environment the suite runs in is set here, not inherited: a caller's $ARCVDM_DATA pointing at another copy,
a hub cache, or a forced terminal width would otherwise change what the tests see.
"""

import os
from pathlib import Path

import pytest

# Read by arcvdm, huggingface_hub or rich; each either set below or removed.
CALLER_VARIABLES = ("ARCVDM_DATA", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN",
                    "TRANSFORMERS_CACHE", "COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR")
for _name in CALLER_VARIABLES:
    os.environ.pop(_name, None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATASETS = SHARED / "datasets"
BASELINES = SHARED / "baselines"
SAMPLES = ROOT / "tasks_json"

# Tests resolve dataset names against ../shared/datasets (same layout as the user cache), never the user's cache.
os.environ["ARCVDM_DATA"] = str(DATASETS)


@pytest.fixture(scope="session", autouse=True)
def empty_user_cache(tmp_path_factory) -> Path:
    """$XDG_CACHE_HOME: an empty cache of the suite's own (tests that need another set their own)."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    return cache


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
