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


def _page_sources_resolve(page: Path) -> bool:
    from urllib.parse import unquote

    return all((page.parent / unquote(src)).is_file() for src in _image_sources(page))


def test_the_report_shows_every_problem_and_the_terminal_agrees(tmp_path, datasets_dir):
    tasks = list(load_answers("arc-agi-1/evaluation", str(datasets_dir)))[:6]
    ids = [t.id for t in tasks]
    folder = tmp_path / "data"
    folder.mkdir()
    for t in tasks:
        data = t.to_dict()
        if t.id == ids[4]:  # a task without test outputs
            for pair in data["test"]:
                del pair["output"]
        (folder / f"{t.id}.json").write_text(json.dumps(data))
    (folder / "broken.json").write_text("{")
    # 'con' was a plain name to older arcvdm, so a run folder may hold problems/con.json; Windows reserves the name.
    (folder / "con.json").write_text(json.dumps(tasks[1].to_dict()))
    con = tasks[1].model_copy(update={"id": "con"})
    run = write_run(tmp_path / "run", [*tasks[:5], con], solved={ids[0]}, failed={ids[2], ids[4]}, dataset=str(folder),
                    selection=[*ids, "broken", "a/b", "con"])  # ids[5] was never run; 'a/b' cannot be a file name
    (run / "problems" / f"{ids[3]}.json").write_text('{"task_id": "')  # truncated
    malformed = {"task_id": "broken", "family": "arc", "status": "failed: TaskFormatError: broken.json: not valid JSON"}
    (run / "problems" / "broken.json").write_text(json.dumps(malformed))
    evil = {**json.loads((run / "problems" / f"{ids[1]}.json").read_text()), "task_id": "../evil"}
    (run / "problems" / "evil.json").write_text(json.dumps(evil))  # a hand-edited file: the id inside is unsafe
    result = CliRunner().invoke(app, ["report", str(run)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    index = (run / "report" / "index.html").read_text()
    states = re.findall(r'<tr data-status="([^"]+)"><td data-v="([^"]+)"', index)
    assert dict((task_id, state) for state, task_id in states) == {
        ids[0]: "solved", ids[1]: "unsolved", ids[2]: "failed", ids[3]: "malformed", ids[4]: "no answer",
        ids[5]: "not run", "broken": "malformed", "a/b": "failed", "con": "unsolved", "../evil": "no answer"}
    counts = "10 problems in this run: 1 solved, 2 unsolved, 2 failed, 2 no answer, 2 malformed, 1 not run"
    assert "Problems (10 in this run)" in index and f'<p id="counts">{counts}' in index
    assert counts in result.output  # the terminal prints the page's line
    for text in ("failed: decode crashed", f"malformed problem file {run / 'problems' / ids[3]}.json", "not valid JSON",
                 "cannot be used as a file name", "not run yet", "task not in"):
        assert text in index and text in result.output, text
    warning = f"1 task has no test output in data, so it is not scored: {ids[4]}"
    assert warning in index and warning in result.output
    # The id that cannot be a file name gets no page, in one line; every other page is written. Export likewise.
    skipped = [line for line in result.output.splitlines() if "'con'" in line]
    assert len(skipped) == 1 and "device name on Windows" in skipped[0] and "has no page" in skipped[0]
    pages = sorted(p.stem for p in (run / "report" / "problems").glob("*.html"))
    assert pages == sorted([ids[0], ids[1], ids[2], ids[4]])
    export = CliRunner().invoke(app, ["export", str(run), "-f", "arc-agi-benchmarking", "-o", str(tmp_path / "sub")],
                                env={"COLUMNS": "400"})
    assert export.exit_code == 0 and "wrote 6 task files" in export.output, export.output
    assert [line for line in export.output.splitlines() if "'con'" in line and "not exported" in line]
    assert "not scored (the dataset has no test output)" in (run / "report" / "problems" / f"{ids[4]}.html").read_text()


def test_unusual_ids_run_resume_report_and_export(tmp_path, samples_dir):
    from arcvdm.formats import load_predictions

    data = tmp_path / "data"
    data.mkdir()
    names = ["flïp-ü", "a b", "x..y", "cafe\u0301"]  # the last in decomposed form, as macOS spells file names
    for name in names:
        shutil.copy(samples_dir / "flip-h.json", data / f"{name}.json")
    fast = ["--preset", "smoke", "--steps", "2", "--eval-every", "1", "--sample-steps", "1", "--height", "48", "--width", "48"]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(data), "--out", str(out), *fast])
    assert result.exit_code == 0, result.output
    files = {p.name: json.loads(p.read_text())["task_id"] for p in (out / "problems").glob("*.json")}
    assert files == {"flïp-ü.json": "flïp-ü", "a b.json": "a b", "x..y.json": "x..y", "caf\u00e9.json": "cafe\u0301"}
    assert set(load_predictions(out).records) == set(names)  # the id is read from the file, not its name
    again = CliRunner().invoke(app, ["run", str(data), "--out", str(out), "--tasks", "caf\u00e9", *fast])
    assert again.exit_code == 0 and "1 done (1 skipped as already done)" in again.output, again.output
    report = CliRunner().invoke(app, ["report", str(out)], env={"COLUMNS": "300"})
    assert report.exit_code == 0 and "4 problems in this run: 4 unsolved" in report.output, report.output
    index = out / "report" / "index.html"
    assert 'href="problems/a%20b.html"' in index.read_text()
    for name in ("flïp-ü", "a b", "x..y", "caf\u00e9"):
        assert _page_sources_resolve(out / "report" / "problems" / f"{name}.html")
    export = CliRunner().invoke(app, ["export", str(out), "--format", "kaggle", "--out", str(tmp_path / "s.json")])
    assert export.exit_code == 0, export.output
    assert sorted(json.loads((tmp_path / "s.json").read_text())) == sorted(names)
