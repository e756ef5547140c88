"""`edgefit errors`: one row per mistake (checked against an independent count), the tag table's arithmetic."""
import csv
import json

import pytest
import torch

from .conftest import run_cli


@pytest.fixture(scope="module")
def analysed(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("errors") / "out"
    r = run_cli("errors", trained_run, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def _independent_mistakes(run_dir):
    """Count the validation mistakes without edgefit's evaluation code: decode, resize, crop, normalize."""
    from PIL import Image
    from torchvision.transforms import v2 as T

    from edgefit import checkpoint

    ck = checkpoint.load(run_dir / "best.pt")
    model = checkpoint.build_model(ck)
    pp = ck["preprocess"]
    tf = T.Compose([T.PILToTensor(), T.Resize(pp["resize"], antialias=True), T.CenterCrop(pp["resolution"]),
                    T.ToDtype(torch.float32, scale=True), T.Normalize(pp["mean"], pp["std"])])
    split = json.loads((run_dir / "split.json").read_text())
    wrong, n = set(), 0
    with torch.no_grad():
        for rel, label in split["files"]["val"]:
            x = tf(Image.open(f"{split['root']}/{rel}").convert("RGB")).unsqueeze(0)
            n += 1
            if int(model(x).argmax(1)) != label:
                wrong.add(rel)
    return wrong, n


def test_one_row_per_mistake(trained_run, analysed):
    out, report = analysed
    wrong, n = _independent_mistakes(trained_run)
    with open(out / "errors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert report["schema"] == "edgefit-errors/1" and report["n"] == n
    assert {r["path"] for r in rows} == wrong and len(rows) == len(wrong) == len(report["errors"])
    assert report["top1"] == pytest.approx(1 - len(wrong) / n, abs=1e-4)
    assert sum(sum(row) for row in report["confusion"]) == n
    assert sum(p["count"] for p in report["pairs"]) == len(wrong)
    confidences = [e["confidence"] for e in report["errors"]]
    assert confidences == sorted(confidences, reverse=True)
    for name in ("confusion.png", "gallery.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "<img" in (out / "gallery.html").read_text() or not wrong


def test_tag_table_shares_and_ceilings(tmp_path):
    (tmp_path / "errors.json").write_text(json.dumps({"schema": "edgefit-errors/1", "n": 200}))
    rows = [["path", "true", "predicted", "confidence", "top3", "dog", "great cat", "blurry"]]
    tags = [("x", "", ""), ("x", "x", ""), ("", "yes", "1"), ("x", "", ""), ("", "", ""),
            ("x", "", "1"), ("", "", ""), ("", "", ""), ("x", "", ""), ("", "x", "")]
    for i, t in enumerate(tags):
        rows.append([f"c/{i}.png", "a", "b", "0.9", "b:0.9 a:0.1", *t])
    with open(tmp_path / "errors.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    r = run_cli("errors", "--tags", tmp_path / "errors.csv", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == "edgefit-error-tags/1" and d["n"] == 200 and d["errors"] == 10 and d["error_rate"] == 0.05
    by = {t["tag"]: t for t in d["tags"]}
    assert by["dog"]["count"] == 5 and by["dog"]["share"] == 0.5 and by["dog"]["ceiling_error_rate"] == 0.025
    assert by["great cat"]["count"] == 3 and by["great cat"]["ceiling_error_rate"] == pytest.approx(0.05 * 0.7)
    assert by["blurry"]["count"] == 2 and d["untagged"] == 3
    human = run_cli("errors", "--tags", tmp_path / "errors.csv")
    assert "error rate 5.0%" in human.stdout and "dog" in human.stdout


@pytest.mark.parametrize("args,expected", [
    ([], "give MODEL"),
    (["nope.tflite"], "model not found"),
    (["--tags", "missing.csv"], "tag sheet not found"),
])
def test_bad_input_exits_2(args, expected):
    r = run_cli("errors", *args)
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr
