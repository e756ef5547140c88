"""The `linux` bundle and the one preprocessing definition it shares with edgefit (device/classify.py)."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgefit.data.pipeline import Preprocess, _decode, transform
from edgefit.deploy.write import write_bundles
from edgefit.device import classify

from .conftest import run_cli, run_device_script


def _images(root: Path) -> list[Path]:
    """Images that exercise every branch of the decoder and the resize: odd aspect ratios up and down, RGBA,
    grayscale, 16-bit, palette with transparency, an EXIF-rotated JPEG, one smaller than the crop."""
    g = np.random.default_rng(0)
    root.mkdir()
    out = []

    def save(name, img, **kw):
        img.save(root / name, **kw)
        out.append(root / name)

    save("wide.png", Image.fromarray(g.integers(0, 256, (97, 150, 3), dtype=np.uint8)))
    save("tall.png", Image.fromarray(g.integers(0, 256, (301, 123, 3), dtype=np.uint8)))
    save("rgba.png", Image.fromarray(g.integers(0, 256, (64, 80, 4), dtype=np.uint8), "RGBA"))
    save("gray.png", Image.fromarray(g.integers(0, 256, (50, 50), dtype=np.uint8), "L"))
    save("deep.png", Image.fromarray(g.integers(0, 65535, (40, 70), dtype=np.uint16)))  # 16-bit grayscale
    pal = Image.fromarray(g.integers(0, 256, (60, 45, 3), dtype=np.uint8)).convert("P")
    save("palette.png", pal, transparency=3)
    rot = Image.fromarray(g.integers(0, 256, (120, 90, 3), dtype=np.uint8))
    exif = rot.getexif()
    exif[274] = 6  # rotated 90 degrees: a phone photo
    save("phone.jpg", rot, exif=exif, quality=90)
    save("tiny.png", Image.fromarray(g.integers(0, 256, (20, 31, 3), dtype=np.uint8)))
    return out


@pytest.mark.parametrize("interpolation,crop_pct,res", [("bilinear", 0.875, 96), ("bicubic", 0.95, 64)])
def test_device_preprocessing_is_exactly_edgefits(tmp_path, interpolation, crop_pct, res):
    pp = Preprocess(res, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), crop_pct, interpolation)
    for path in _images(tmp_path / "img"):
        ours = transform(_decode(path, pp), pp, None).numpy().transpose(1, 2, 0)
        device = classify.preprocess(path, pp.to_dict())
        assert device.dtype == np.float32 and device.shape == (res, res, 3), path.name
        assert np.array_equal(ours, device), (path.name, float(np.abs(ours - device).max()))


@pytest.fixture(scope="module")
def bundle(exported_art, tmp_path_factory):
    folder, _, _ = exported_art
    out = tmp_path_factory.mktemp("deploy")
    (b,) = write_bundles(folder, "linux", out=out)
    return folder, b


def test_bundle_holds_the_verified_artifact_and_its_runner(bundle):
    folder, b = bundle
    d = Path(b.directory)
    assert b.artifact == "model_int8.tflite"  # int8 is preferred for a board
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "classify.py", "edgefit.json", "labels.txt",
                                                   "model_int8.tflite"]
    assert (d / "model_int8.tflite").read_bytes() == (folder / "model_int8.tflite").read_bytes()
    manifest = json.loads((d / "edgefit.json").read_text())
    assert manifest["deploy"]["model"] == "model_int8.tflite" and len(manifest["artifacts"]) == 1
    assert (d / "labels.txt").read_text().split() == manifest["labels"]
    assert "top-1 agreement" in b.parity and "pip install numpy pillow ai-edge-litert" in (d / "README.md").read_text()


def test_classify_runs_without_the_heavy_stack_and_predicts_as_errors_does(bundle, trained_run, tmp_path):
    """On the run's test split, classify.py (torch, TensorFlow, onnx, timm and edgefit blocked) gives the
    predictions `edgefit errors` gives for the same artifact, image for image, and the runtime's own scores."""
    from edgefit import checkpoint
    from edgefit.data.images import split_images
    from edgefit.runtimes import runner

    folder, b = bundle
    split = json.loads((trained_run / "split.json").read_text())
    root = Path(split["root"])
    paths = [root / rel for rel, _ in split["files"]["test"]]
    assert len(paths) >= 15
    r = run_device_script(Path(b.directory) / "classify.py", *paths, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    got = {Path(x["path"]).relative_to(root).as_posix(): x for x in json.loads(r.stdout)}
    assert len(got) == len(paths)
    e = run_cli("errors", folder / "model_int8.tflite", "--split", "test", "--out", tmp_path / "err", "--json")
    assert e.returncode == 0, e.stderr[-2000:]
    report = json.loads(e.stdout)
    wrong = {x["path"]: x["predicted"] for x in report["errors"]}
    labels = {rel: report["classes"][label] for rel, label in split["files"]["test"]}
    assert report["n"] == len(paths)
    assert {rel: x["label"] for rel, x in got.items()} == {rel: wrong.get(rel, labels[rel]) for rel in labels}
    source = checkpoint.open_source(trained_run)
    test = split_images(source, "test", None)
    logits = runner(folder / "model_int8.tflite")(test.x.numpy())
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for rel, row in zip(test.paths, p, strict=True):
        assert got[Path(rel).as_posix()]["score"] == pytest.approx(float(row.max()), abs=1e-5)


def test_classify_names_the_package_when_no_runtime_is_installed(bundle, tmp_path):
    _, b = bundle
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(img)
    r = run_device_script(Path(b.directory) / "classify.py", img,
                          blocked=("torch", "tensorflow", "onnx", "timm", "edgefit", "ai_edge_litert",
                                   "tflite_runtime"))
    assert r.returncode == 2 and "pip install ai-edge-litert" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_targets_are_one_line(exported_art, tmp_path):
    folder, _, _ = exported_art
    r = run_cli("export", folder, "--target", "linx", "--out", tmp_path / "x")
    assert r.returncode == 2 and "did you mean linux" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
    r = run_cli("export", folder, "--out", tmp_path / "x")
    assert r.returncode == 2 and "give --target" in r.stderr


def test_no_bundle_from_an_artifact_that_failed_verify(trained_run, tmp_path):
    """A floor no artifact can meet makes verify fail for real: the export stays for inspection, no bundle."""
    out = tmp_path / "art"
    r = run_cli("export", trained_run, "--format", "tflite", "--precision", "fp32", "--target", "linux",
                "--min-agreement", "1.01", "--samples", "20", "--out", out)
    assert r.returncode == 2 and "model.tflite failed verify" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (out / "model.tflite").is_file() and not (out / "linux").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".linux")]  # no staging folder left behind
