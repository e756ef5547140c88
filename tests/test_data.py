import json
from pathlib import Path

import pytest
from PIL import Image

from edgefit.data.demo import make_demo_data
from edgefit.data.folder import load_rgb, scan
from edgefit.errors import BadInput

from .conftest import run_cli


def _img(path: Path, color=(200, 30, 30), mode="RGB", size=24):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), color if mode == "RGB" else 128).save(path)


def _folder(root: Path, counts: dict):
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _img(root / cls / f"{i}.png")
    return root


def test_auto_split_is_stratified_and_reproducible(tmp_path):
    root = _folder(tmp_path / "d", {"a": 10, "b": 20})
    s1, s2 = scan(root, seed=1), scan(root, seed=1)
    assert s1.files == s2.files and s1.classes == ["a", "b"]
    assert scan(root, seed=2).files != s1.files
    val_labels = [lab for _, lab in s1.files["val"]]
    assert val_labels.count(0) == 2 and val_labels.count(1) == 4
    assert not set(map(tuple, s1.files["val"])) & set(map(tuple, s1.files["train"]))
    s3 = scan(root, seed=1, test_fraction=0.1)
    assert len(s3.files["test"]) == 3 and s3.counts()["train"] == 30 - 6 - 3


def test_presplit_folders(tmp_path):
    root = tmp_path / "d"
    for split, n in [("train", 3), ("val", 2), ("test", 1)]:
        _folder(root / split, {"cat": n, "dog": n})
    s = scan(root)
    assert s.mode == "presplit" and s.counts() == {"train": 6, "val": 4, "test": 2}


def test_image_modes_convert_to_rgb(tmp_path):
    for mode in ["L", "RGBA", "P", "I;16", "LA"]:
        p = tmp_path / f"x_{mode.replace(';', '')}.png"
        Image.new(mode, (8, 8)).save(p)
        assert load_rgb(p).mode == "RGB"


BAD_FOLDERS = {
    "one_class": ({"a": 5}, "only one class"),
    "empty_class": ({"a": 5, "b": 0}, "class folder"),
    "too_few": ({"a": 5, "b": 1}, "class 'b' has 1 image(s); the split needs at least 2"),
    "no_images": ({}, "no images"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_bad_folders_exit_2(case, tmp_path):
    counts, expected = BAD_FOLDERS[case]
    root = _folder(tmp_path / "d", counts)
    root.mkdir(exist_ok=True)
    with pytest.raises(BadInput, match=expected.replace("(", r"\(").replace(")", r"\)")):
        scan(root)
    r = run_cli("train", "--variant", "mobilenet_v2_0.35_96", "--data", root, "--weights", "none",
                "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_missing_and_file_data_paths(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    for path, expected in [(tmp_path / "nope", "not found"), (f, "is a file")]:
        r = run_cli("train", "--variant", "mobilenet_v2_0.35_96", "--data", path, "--weights", "none")
        assert r.returncode == 2 and expected in r.stderr


def test_demo_data_cli(tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo-data", out, "--classes", "3", "--per-class", "4", "--size", "32")
    assert r.returncode == 0, r.stderr
    classes = sorted(p.name for p in out.iterdir())
    assert len(classes) == 3 and all(len(list((out / c).glob("*.png"))) == 4 for c in classes)
    assert Image.open(next((out / classes[0]).glob("*.png"))).size == (32, 32)
    again = run_cli("demo-data", out)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    bad = run_cli("demo-data", tmp_path / "x", "--classes", "1")
    assert bad.returncode == 2 and "--classes" in bad.stderr


def test_demo_data_is_reproducible(tmp_path):
    make_demo_data(tmp_path / "a", classes=2, per_class=2, size=24, seed=3)
    make_demo_data(tmp_path / "b", classes=2, per_class=2, size=24, seed=3)
    for p in (tmp_path / "a").rglob("*.png"):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
    assert json.dumps(sorted(x.name for x in (tmp_path / "a").iterdir())) == '["circle", "square"]'
