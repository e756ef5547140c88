"""`edgefit doctor`: planted problems are found under their codes with their files; a clean folder has none."""
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from edgefit.data.demo import make_demo_data
from edgefit.doctor import doctor

from .conftest import run_cli


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A generated folder already split into train/ and val/ (3 classes, 30 + 8 images of 96 px each)."""
    src = make_demo_data(tmp_path_factory.mktemp("gen") / "all", classes=3, per_class=38, size=96, seed=5)["out"]
    root = tmp_path_factory.mktemp("clean") / "data"
    for cls in sorted(p.name for p in Path(src).iterdir()):
        files = sorted((Path(src) / cls).iterdir())
        for split, part in (("train", files[:30]), ("val", files[30:])):
            (root / split / cls).mkdir(parents=True)
            for f in part:
                shutil.copy(f, root / split / cls / f.name)
    return root


@pytest.fixture(scope="module")
def planted(clean, tmp_path_factory):
    root = tmp_path_factory.mktemp("planted") / "data"
    shutil.copytree(clean, root)
    a, b, c = sorted(p.name for p in (root / "train").iterdir())
    val_a = sorted((root / "val" / a).iterdir())
    exact_leak = root / "train" / a / "copy_of_val.png"
    shutil.copy(val_a[0], exact_leak)
    resized_leak = root / "train" / a / "resized_val.jpg"
    with Image.open(val_a[1]) as im:
        im.resize((72, 72), Image.BILINEAR).convert("RGB").save(resized_leak, quality=90)
    conflict = root / "train" / b / "also_in_a.png"
    shutil.copy(sorted((root / "train" / a).glob("0*.png"))[0], conflict)
    truncated = root / "train" / c / "truncated.png"
    truncated.write_bytes(val_a[2].read_bytes()[:300])
    text = root / "train" / c / "notes.jpg"
    text.write_text("this is not an image")
    other = root / "train" / c / "README.txt"
    other.write_text("labels by hand")
    extra = make_demo_data(root.parent / "extra", classes=4, per_class=5, size=96, seed=9)
    fresh = sorted((Path(extra["out"]) / extra["classes"][3]).iterdir())
    for split, files in (("train", fresh[:4]), ("val", fresh[4:])):  # a tiny fourth class
        (root / split / "tiny").mkdir()
        for f in files:
            shutil.copy(f, root / split / "tiny" / f.name)
    rel = {k: str(v.relative_to(root)) for k, v in dict(exact_leak=exact_leak, resized_leak=resized_leak,
                                                        conflict=conflict, truncated=truncated, text=text,
                                                        other=other, val0=val_a[0], val1=val_a[1]).items()}
    return root, rel, doctor(root)


def test_clean_folder_has_no_finding(clean, tmp_path):
    r = run_cli("doctor", clean, "--out", tmp_path / "out", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == "edgefit-doctor/1" and d["findings"] == [] and d["images"] == 3 * 38
    assert d["classes"] == {name: 38 for name in d["classes"]} and len(d["classes"]) == 3
    assert json.loads((tmp_path / "out" / "doctor.json").read_text())["findings"] == []
    for sheet in ("samples.png", "augmented.png"):
        assert (tmp_path / "out" / sheet).read_bytes()[:4] == b"\x89PNG"


def test_planted_problems_are_found_with_their_files(planted):
    root, rel, report = planted
    by = {}
    for f in report.findings:
        by.setdefault(f.code, []).append(f)
    leak = by["leak"][0]
    assert leak.severity == "error" and leak.count == 2
    assert {rel["val0"], rel["val1"]} == set(leak.files)
    groups = {frozenset(g) for g in leak.groups}
    assert frozenset({rel["val0"], rel["exact_leak"]}) in groups  # exact copy
    assert frozenset({rel["val1"], rel["resized_leak"]}) in groups  # resized and re-encoded as JPEG
    conflict = by["label_conflict"][0]
    assert conflict.severity == "error" and rel["conflict"] in conflict.files and len(conflict.groups) == 1
    unreadable = by["unreadable"][0]
    assert set(unreadable.files) == {rel["truncated"], rel["text"]} and "truncated" in unreadable.message
    assert by["not_an_image"][0].files == [rel["other"]]
    small = [f for f in by["small_class"] if f.severity == "warning"][0]
    assert small.files == ["tiny"]
    assert by["imbalance"][0].files == ["tiny"]
    assert not report.passed


def test_planted_folder_exits_1_and_lists_findings(planted):
    root, rel, _ = planted
    r = run_cli("doctor", root)
    assert r.returncode == 1, r.stderr
    assert "ERROR leak:" in r.stdout and "ERROR label_conflict:" in r.stdout and rel["val0"] in r.stdout


def test_unsplit_folder_uses_the_split_train_would_make(clean, tmp_path):
    from edgefit.data.folder import scan

    flat = tmp_path / "flat"
    for p in (clean / "train").iterdir():
        shutil.copytree(p, flat / p.name)
    d = doctor(flat, seed=3, val_fraction=0.25)
    split = scan(flat, seed=3, val_fraction=0.25)
    assert d.splits == split.counts() and d.split["mode"] == "auto" and d.findings == []
    few = tmp_path / "few"
    shutil.copytree(flat, few)
    for f in sorted((few / "circle").iterdir())[1:]:
        f.unlink()  # one image left: cannot be split
    d = doctor(few)
    err = [f for f in d.findings if f.code == "small_class" and f.severity == "error"]
    assert err and err[0].files == ["circle"]


@pytest.mark.parametrize("args,expected", [
    (["nope"], "data folder not found"),
    (["{clean}", "--resolution", "2"], "--resolution must be 8 or more"),
])
def test_bad_input_exits_2(clean, args, expected):
    r = run_cli("doctor", *[a.format(clean=clean) for a in args])
    assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1
