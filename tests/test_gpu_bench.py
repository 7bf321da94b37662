"""The GPU benchmark's contract, checked on CPU: the one-line refusal without CUDA, the JSON record's shape (not its
figures), the projection, the lookups and the busy-machine warning: `python -m pytest tests/test_gpu_bench.py -q`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from arcvdm.config import load_config
from arcvdm.environment import load_line
from arcvdm.gpu_bench import peak_tflops, projected_minutes, random_backbones, run_gpu_bench, table

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_gpu_the_script_stops_at_once_in_one_line(tmp_path):
    out = tmp_path / "bench.json"
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so every machine gets the refusal; arcvdm from this interpreter's venv.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(out),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", str(ROOT / "runners" / "gpu_bench.sh")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], result.stderr
    assert not out.exists()


def test_the_json_holds_every_figure_of_each_backbone(tmp_path):
    # The measurement itself through its internal CPU switch, on tiny at a small shape: the keys, not the figures.
    out = tmp_path / "bench.json"
    report = run_gpu_bench(out, ["tiny"], device="cpu", log=lambda *_: None, shape=(9, 32, 32), train_steps=1,
                           sample_steps=2)
    assert json.loads(out.read_text()) == report
    assert report["device"] == "cpu" and report["peak_bf16_tflops"] is None and isinstance(report["date"], str)
    assert isinstance(report["load"]["busy"], bool) and report["torch_threads"] >= 1
    (record,) = report["backbones"]
    assert record["error"] is None and record["shape"] == [9, 32, 32] and record["dtype"] == "float32"
    assert record["parameters"] > 0 and record["forward_flops"] > 0
    for key, checkpointing in (("train", False), ("train_gradient_checkpointing", True)):
        train = record[key]
        assert train["gradient_checkpointing"] is checkpointing and train["batch_size"] == 2
        assert train["step_s"] > 0 and train["step_flops"] > 0 and train["peak_memory_gib"] > 0
        assert train["mfu"] is None  # a CPU has no bf16 tensor-core peak
    assert record["sample"]["steps"] == 2 and record["sample"]["video_s"] > 0
    minutes = record["projected_minutes_per_problem"]
    assert 0 < minutes["early_stop_at_second_checkpoint"] < minutes["fixed"]
    assert minutes["gradient_checkpointing"] is False  # paper-arc's setting, when it fits
    header, row = table(report)
    assert header.split()[:3] == ["backbone", "shape", "step"] and row.split()[:2] == ["tiny", "9x32x32"]


def test_the_projection_follows_the_paper_arc_schedule():
    minutes = projected_minutes(load_config("paper-arc", {"backbone": "tiny"}), step_s=0.5, video_s=6.0)
    # 1800 steps and 6 checkpoints x (3 train + 1 test) videos; stopped at the second checkpoint: 600 steps, 8 videos
    assert minutes["fixed"] == pytest.approx((1800 * 0.5 + 24 * 6.0) / 60, abs=0.01)
    assert minutes["early_stop_at_second_checkpoint"] == pytest.approx((600 * 0.5 + 8 * 6.0) / 60, abs=0.01)


def test_peaks_and_backbones_are_found_by_name():
    assert peak_tflops("NVIDIA H200 NVL") < peak_tflops("NVIDIA H200")  # the more specific name is matched first
    assert peak_tflops("NVIDIA H100 PCIe") < peak_tflops("NVIDIA H100 80GB HBM3")
    assert peak_tflops("NVIDIA GeForce GTX 1080") is None
    names = random_backbones()
    assert "cogvideox1.5-5b-i2v-random" in names and "tiny" not in names


def test_benchmarks_say_when_the_machine_is_busy(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.5, 0.0, 0.0))
    assert "UNRELIABLE" in load_line() and f"on {cores} cores" in load_line()
    monkeypatch.setattr(os, "getloadavg", lambda: (cores / 2, 0.0, 0.0))
    assert "UNRELIABLE" not in load_line()


def test_bench_train_pins_and_reports_its_threads():
    from typer.testing import CliRunner

    from arcvdm.cli import app

    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["bench", "train", "--backbone", "tiny", "--height", "32", "--width", "32",
                                          "--steps", "1", "--threads", "1", "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)  # the pin is process-wide: later tests keep the suite's count
    assert result.exit_code == 0, result.output
    assert "torch threads 1" in result.output and "load average" in result.output
    assert "time per training step" in result.output
