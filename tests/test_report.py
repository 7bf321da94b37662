"""`arcvdm inspect` and `arcvdm report` (with a headless-browser check): `python -m pytest tests/test_report.py -q`."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from arcvdm.cli import app
from arcvdm.scoring import load_answers
from run_builder import write_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, datasets_dir):
    tasks = list(load_answers("arc-agi-1/evaluation", str(datasets_dir)))[:4]
    out = write_run(tmp_path_factory.mktemp("r") / "run", tasks, solved={tasks[0].id}, failed={tasks[3].id}, images=True,
                    selection=[t.id for t in tasks])
    result = CliRunner().invoke(app, ["report", str(out), "--data-dir", str(datasets_dir)])
    assert result.exit_code == 0, result.output
    return out, [t.id for t in tasks]


def test_inspect_shows_everything_with_marks(run, datasets_dir):
    out, ids = run
    result = CliRunner().invoke(app, ["inspect", str(out), ids[0], "--data-dir", str(datasets_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in (ids[0], "train 0 input", "test 0 ground truth", "attempt_1 ✗", "attempt_2 ✓", "test 0 votes", "step 10", "decode: blank frame"):
        assert text in result.output
    # The vote list: rank, count, untransformed views, last step, shape, right, which attempt it became.
    votes = result.output.split("test 0 votes")[1].splitlines()[2:4]
    shape = "×".join(map(str, load_answers("arc-agi-1/evaluation", str(datasets_dir))[ids[0]].test[0].output.shape))
    assert votes[0].split() == ["1", "3", "1", "20", shape, "✓", "attempt_2"]
    assert votes[1].split() == ["2", "1", "0", "10", shape, "✗", "attempt_1"]
    missing = CliRunner().invoke(app, ["inspect", str(out), "nope", "--data-dir", str(datasets_dir)])
    assert missing.exit_code != 0 and "no task 'nope'" in str(missing.exception)


def test_report_pages_images_and_size(run):
    out, ids = run
    report = out / "report"
    index = (report / "index.html").read_text()
    assert "strict 1/4 tasks" in index and "scored on 4 of 400 tasks" in index and index.count("<tr data-status=") == 4
    assert 'data-status="failed"' in index and 'data-status="solved"' in index
    page = (report / "problems" / f"{ids[1]}.html").read_text()
    assert "difference: " in page and f'src="{ids[1]}/run-train0.gif"' in page
    assert (report / "problems" / ids[1] / "run-train0.gif").is_file()  # copied: the report stands on its own
    assert (report / "problems" / ids[1] / "test0-attempt_2-diff.png").is_file()
    assert (report / "problems" / f"{ids[3]}.html").is_file()  # a failed problem still gets its page
    assert "class='votes'" not in page  # no votes recorded for this problem: no vote table
    size = sum(f.stat().st_size for f in report.rglob("*") if f.is_file())
    assert size < 60_000 * len(ids)  # PNGs of grids, no videos: a 400-problem report stays a few MB


def test_vision_report_lists_metrics_and_images(tmp_path):
    (tmp_path / "problems" / "pose-n3-seed0").mkdir(parents=True)
    (tmp_path / "config.json").write_text(json.dumps({"family": "arc", "dataset": "synthetic"}))  # the family comes from the problems
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "problems" / "pose-n3-seed0" / "step5-val0-prediction.png")
    record = {"task_id": "pose-n3-seed0", "family": "pose", "status": "done", "metrics": {"match_rate": 0.5},
              "checkpoints": [{"step": 5, "metrics": {"match_rate": 0.5}, "images": ["pose-n3-seed0/step5-val0-prediction.png", "gone.png"]}]}
    (tmp_path / "problems" / "pose-n3-seed0.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "html")])
    assert result.exit_code == 0, result.output
    assert "match_rate" in (tmp_path / "html" / "index.html").read_text()
    page = (tmp_path / "html" / "problems" / "pose-n3-seed0.html").read_text()
    assert 'src="pose-n3-seed0/run-step5-val0-prediction.png"' in page and "missing: gone.png" in page
    assert (tmp_path / "html" / "problems" / "pose-n3-seed0" / "run-step5-val0-prediction.png").is_file()
    # inspect and export are for ARC attempts: a vision run is told so, not sent looking for dataset "synthetic"
    for args in (["inspect", str(tmp_path), "pose-n3-seed0"], ["export", str(tmp_path), "-f", "kaggle", "-o", str(tmp_path / "s.json")]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code != 0 and "a pose vision run" in str(result.exception)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (apt-get install -y chromium)")
def test_report_in_a_headless_browser(run, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out, ids = run
    report = tmp_path / "moved"
    shutil.copytree(out / "report", report / "report")  # the report folder alone, anywhere
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((report / "report" / "index.html").as_uri())
            page.fill("#filter", ids[2])
            assert page.locator("#problems tbody tr:visible").count() == 1
            page.fill("#filter", "")
            page.select_option("#status", "failed")
            assert page.locator("#problems tbody tr:visible").count() == 1
            page.select_option("#status", "")
            page.click("th:has-text('steps')")
            page.click("th:has-text('steps')")  # descending: the most steps first
            assert page.locator("#problems tbody tr").first.get_attribute("data-status") == "unsolved"
            page.click(f"a:has-text('{ids[0]}')")
            page.wait_for_load_state("load")
            assert page.url.endswith(f"problems/{ids[0]}.html")
            # The problem with votes shows them as a table: a picture of each voted grid with its count.
            rows = page.locator("#votes-test0 tr")
            assert rows.count() == 3
            assert [rows.nth(n).locator("td").nth(2).inner_text() for n in (1, 2)] == ["3", "1"]
            assert rows.nth(1).locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
            widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) > 10 and min(widths) > 0
        finally:
            browser.close()


def test_inspect_paints_cells_in_the_palette_on_a_terminal(datasets_dir):
    from io import StringIO

    from rich.console import Console

    from arcvdm.report.inspect import print_problem

    task = load_answers("arc-agi-1/evaluation", str(datasets_dir))[0]
    buffer = StringIO()
    print_problem(task, None, Console(file=buffer, force_terminal=True, color_system="truecolor", width=200))
    assert "48;2;" in buffer.getvalue()  # truecolor backgrounds
    assert "this run has no result" in buffer.getvalue()


def _image_sources(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text())


def test_report_folder_is_self_contained(run, tmp_path):
    out, ids = run
    moved = tmp_path / "elsewhere" / "report"
    shutil.copytree(out / "report", moved)  # without the run folder next to it
    pages = [moved / "index.html", *sorted((moved / "problems").glob("*.html"))]
    sources = [(page, src) for page in pages for src in _image_sources(page)]
    assert len(sources) > 40 and any(src.endswith(".gif") for _, src in sources)
    broken = [(page.name, src) for page, src in sources if not (page.parent / src).is_file()]
    assert not broken, broken[:5]


def test_report_writes_words_not_python_values(run):
    out, ids = run
    for page in (out / "report" / "problems").glob("*.html"):
        text = page.read_text()
        for repr_text in ("{'", "None", "&lt;span", "&#39;bad&#39;", "True", "False"):
            assert repr_text not in text, (page.name, repr_text)
    page = (out / "report" / "problems" / f"{ids[1]}.html").read_text()
    assert "selection: the paper rule, 2 attempts per test input; every train pair exact from step 10" in page
    assert "training steps: 30 of 40 scheduled" in page
    assert 'alt="attempt 1 (wrong)"' in page  # the mark is words in the alt text, a coloured sign in the caption


def test_report_escapes_what_the_run_wrote(run, tmp_path, datasets_dir):
    out, ids = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    record_path = copy / "problems" / f"{ids[3]}.json"
    record = json.loads(record_path.read_text())
    record["status"] = "failed: <script>alert(1)</script>"
    record_path.write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(copy), "--data-dir", str(datasets_dir), "--out", str(tmp_path / "html")])
    assert result.exit_code == 0, result.output
    for page in (tmp_path / "html" / "index.html", tmp_path / "html" / "problems" / f"{ids[3]}.html"):
        text = page.read_text()
        assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_report_marks_the_shape_level_of_a_centered_run(run):
    out, _ = run  # run_builder records "output_size_from": "ground-truth" (the centered layout)
    index = (out / "report" / "index.html").read_text()
    assert "lenient: shape (size from the ground truth)" in index and "right by construction" in index


def test_vision_triplets_are_labelled(tmp_path):
    folder = tmp_path / "problems" / "zoom-n2-seed0"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 28, 3), np.uint8)).save(folder / "step4-eval0.png")
    record = {"task_id": "zoom-n2-seed0", "family": "zoom", "status": "done", "metrics": {"psnr": 12.0},
              "checkpoints": [{"step": 4, "metrics": {"psnr": 12.0}, "images": ["zoom-n2-seed0/step4-eval0.png"]}]}
    (tmp_path / "problems" / "zoom-n2-seed0.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "html" / "problems" / "zoom-n2-seed0.html").read_text()
    assert '<div class="panels"><span>input</span><span>target</span><span>prediction</span></div>' in page
    index = (tmp_path / "html" / "index.html").read_text()
    assert "<td>-</td><td>1</td>" in index  # one problem: no standard deviation


def test_templates_ship_as_package_data():
    import tomllib
    from importlib import resources

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["arcvdm.report"]
    templates = resources.files("arcvdm.report") / "templates"
    names = sorted(p.name for p in templates.iterdir() if p.name.endswith(".html"))
    assert {"index.html", "problem.html", "vision_index.html", "vision_problem.html"} <= set(names)
    assert all(any(Path("templates", n).match(p) for p in patterns) for n in names)
    assert any(d.startswith("jinja2") for d in config["project"]["dependencies"])
