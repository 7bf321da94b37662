"""The mini's GPU session script (runners/gpu_mini.sh) at toy size on the CPU: what it packs fits what the device tool
brings back, the built folder comes back whole and loadable, both benches are scored. And the wheel list it installs
(runners/device_wheels.py): `python -m pytest tests/test_gpu_mini_script.py -q`."""

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The device tool's limits on what comes back from $OUT (its README): 8 files of 16 MiB; the script splits at 15.
MAX_FILES, MAX_BYTES = 8, 16 * 2**20


@pytest.mark.slow
def test_the_session_script_packs_a_loadable_build_and_both_benches_at_toy_size(tmp_path):
    from diffusers import CogVideoXImageToVideoPipeline

    from arcvdm.backbones.mini_card import sha256

    dest = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("BUILD_S", "BENCH_S", "TASKS", "SEED", "WORKERS_PER_GPU", "PYTHONPATH", "BASELINE")}
    # no wheels folder: this interpreter's venv already holds arcvdm and its needs
    env.update(TOY="1", BASELINE="1", PYTHON=sys.executable, WHL=str(tmp_path / "no-wheels"))
    result = subprocess.run(["bash", str(ROOT / "runners" / "gpu_mini.sh"), str(dest)], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    files = list(dest.iterdir())
    assert len(files) <= MAX_FILES and all(f.is_file() and f.stat().st_size <= MAX_BYTES for f in files)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f.name) for f in files)
    log = (dest / "session.log").read_text()
    for phase in ("build", "bench-cpu", "bench-gpu"):
        assert f"{phase}: exit 0 after" in log, log

    parts = sorted(dest.glob("mini-gpu.tar.part-*"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    folder = tmp_path / "back" / "mini-gpu"
    card = json.loads((folder / "model_card.json").read_text())
    assert card["recipe"]["canvas"] == 80 and all(sha256(folder / n) == e["sha256"] for n, e in card["files"].items())
    assert CogVideoXImageToVideoPipeline.from_pretrained(folder).transformer.config.attention_head_dim == 64

    shipped, built = (json.loads((dest / f"bench-{k}.json").read_text()) for k in ("cpu", "gpu"))
    assert shipped["backbone"] == "mini" and built["backbone"].endswith("mini-gpu")
    assert shipped["all"]["tasks"] == built["all"]["tasks"] == 2
    with tarfile.open(dest / "runs.tar.gz") as tar:
        names = tar.getnames()
    for task in (t for t in names if re.fullmatch(r"\./bench-gpu/tasks/[^/]+\.json", t)):
        assert f"./bench-gpu/run/problems/{Path(task).name}" in names
    assert not any(n.endswith((".png", ".safetensors")) for n in names)


def test_the_wheel_list_is_arcvdm_s_installed_needs_without_the_image_s_own():
    spec = importlib.util.spec_from_file_location("device_wheels", ROOT / "runners" / "device_wheels.py")
    wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheels)
    from importlib.metadata import version

    every = wheels.closure()
    carried = wheels.closure(skip=wheels.KEPT_FROM_IMAGE)
    assert {"diffusers", "peft", "transformers", "pydantic", "submitit", "huggingface-hub"} <= set(carried)
    assert carried["diffusers"] == version("diffusers")
    # torch and what only torch needs stay behind; arcvdm's own needs of the same stack are in the full closure
    assert "torch" in every and not {"torch", "sympy", "numpy"} & set(carried)
    assert "arcvdm" not in every
