"""The android bundle: the TFLite model metadata read back with the schema's generated reader (not the writer's
object API), labels.txt from the zip archive appended to the .tflite, and the model with metadata still giving
bit-identical outputs in LiteRT."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgefit.deploy import android
from edgefit.deploy import tflite_metadata_schema as meta_fb
from edgefit.deploy.bundle import BundleInputs, sha256_file
from edgefit.deploy.write import write_bundles
from edgefit.errors import BadInput


@pytest.fixture(scope="module")
def android_bundle(exported_art, tmp_path_factory):
    folder, manifest, _ = exported_art
    [bundle] = write_bundles(folder, "android", out=tmp_path_factory.mktemp("android"))
    return folder, manifest, bundle


def read_metadata(model: bytes) -> tuple[list[str], bytes, meta_fb.ModelMetadata]:
    """The model's `metadata` entry names and its TFLITE_METADATA flatbuffer (bytes, root table), read with the
    generated readers."""
    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAs(model, 0)
    names = [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]
    entry = m.Metadata(names.index("TFLITE_METADATA"))
    buf = m.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert meta_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0), "file identifier M001"
    return names, buf, meta_fb.ModelMetadata.GetRootAs(buf, 0)


def litert_outputs(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    outs = []
    for x in inputs:
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    return outs


def test_bundle_files_and_readme(android_bundle):
    folder, manifest, bundle = android_bundle
    out = Path(bundle.directory)
    assert bundle.artifact == "model_int8.tflite"  # the int8 artifact is preferred
    assert bundle.files == ["README.md", "labels.txt", "model_int8.tflite"]
    assert (out / "labels.txt").read_text().splitlines() == manifest["labels"]
    readme = (out / "README.md").read_text()
    parity = next(r for r in manifest["verify"]["artifacts"] if r["file"] == "model_int8.tflite")
    assert bundle.parity == BundleInputs(folder, manifest, None, parity).parity_line()
    for text in (bundle.parity, "File > New > Other > TensorFlow Lite Model", "ImageClassifier",
                 "ModelInt8.newInstance", "logitsAsCategoryList", "times 255"):
        assert text in readme
    assert bundle.facts["identical_outputs_on_inputs"] == android.PARITY_INPUTS
    assert bundle.facts["size_bytes"] == (out / "model_int8.tflite").stat().st_size
    # the verified artifact itself is untouched
    art = next(a for a in manifest["artifacts"] if a["file"] == "model_int8.tflite")
    assert sha256_file(folder / "model_int8.tflite") == art["sha256"]


def test_metadata_reads_back(android_bundle):
    folder, manifest, bundle = android_bundle
    path = Path(bundle.directory) / "model_int8.tflite"
    names, _, md = read_metadata(path.read_bytes())
    assert names.count("TFLITE_METADATA") == 1
    for field in (md.Name(), md.Description(), md.Version(), md.Author(), md.License()):
        assert field
    assert md.MinParserVersion() == b"1.0.0"
    assert manifest["variant"].encode() in md.Name()
    assert md.SubgraphMetadataLength() == 1
    g = md.SubgraphMetadata(0)
    assert g.InputTensorMetadataLength() == 1 and g.OutputTensorMetadataLength() == 1

    pre, res = manifest["preprocess"], manifest["preprocess"]["resolution"]
    image = g.InputTensorMetadata(0)
    assert image.Content().ContentPropertiesType() == meta_fb.ContentProperties.ImageProperties
    props = meta_fb.ImageProperties()
    props.Init(image.Content().ContentProperties().Bytes, image.Content().ContentProperties().Pos)
    assert props.ColorSpace() == meta_fb.ColorSpaceType.RGB
    assert (props.DefaultSize().Width(), props.DefaultSize().Height()) == (res, res)
    assert image.ProcessUnitsLength() == 1
    unit = image.ProcessUnits(0)
    assert unit.OptionsType() == meta_fb.ProcessUnitOptions.NormalizationOptions
    norm = meta_fb.NormalizationOptions()
    norm.Init(unit.Options().Bytes, unit.Options().Pos)
    mean255 = np.float32(np.array(pre["mean"]) * 255.0)  # edgefit's [0, 1] mean/std in 0-255 pixel units
    std255 = np.float32(np.array(pre["std"]) * 255.0)
    np.testing.assert_array_equal(norm.MeanAsNumpy(), mean255)
    np.testing.assert_array_equal(norm.StdAsNumpy(), std255)
    # stats: 0 and 255 pixels normalized, i.e. edgefit's (0 - mean) / std and (1 - mean) / std
    np.testing.assert_allclose(image.Stats().MinAsNumpy(), -np.array(pre["mean"]) / pre["std"], rtol=1e-6)
    np.testing.assert_allclose(image.Stats().MaxAsNumpy(), (1 - np.array(pre["mean"])) / pre["std"], rtol=1e-6)

    scores = g.OutputTensorMetadata(0)
    assert scores.Content().ContentPropertiesType() == meta_fb.ContentProperties.FeatureProperties
    assert scores.AssociatedFilesLength() == 1
    f = scores.AssociatedFiles(0)
    assert f.Name() == b"labels.txt" and f.Type() == meta_fb.AssociatedFileType.TENSOR_AXIS_LABELS

    with zipfile.ZipFile(path) as zf:  # the .tflite is also a zip archive with the associated files
        assert zf.namelist() == ["labels.txt"]
        assert zf.getinfo("labels.txt").compress_type == zipfile.ZIP_STORED
        assert zf.read("labels.txt").decode().splitlines() == manifest["labels"]


def test_model_with_metadata_is_bit_identical_in_litert(android_bundle):
    folder, manifest, bundle = android_bundle
    pre = manifest["preprocess"]
    rng = np.random.default_rng(7)
    shape = (1, pre["resolution"], pre["resolution"], 3)
    mean, std = np.array(pre["mean"], np.float32), np.array(pre["std"], np.float32)
    inputs = [((rng.random(shape, dtype=np.float32) - mean) / std).astype(np.float32) for _ in range(4)]
    ref = litert_outputs(folder / "model_int8.tflite", inputs)
    got = litert_outputs(Path(bundle.directory) / "model_int8.tflite", inputs)
    for r, g in zip(ref, got, strict=True):
        assert r.shape == (1, len(manifest["labels"]))
        np.testing.assert_array_equal(g, r)
    assert not all(np.array_equal(ref[0], r) for r in ref[1:])  # the inputs exercise the model


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_float_artifacts_bundle(exported_art, tmp_path, precision):
    folder, manifest, _ = exported_art
    art = next(a for a in manifest["artifacts"] if a["format"] == "tflite" and a["precision"] == precision)
    written = android.write(BundleInputs(folder, manifest, art, None), tmp_path)
    assert written.facts["identical_outputs_on_inputs"] == android.PARITY_INPUTS
    out = tmp_path / art["file"]
    _, _, md = read_metadata(out.read_bytes())
    assert md.SubgraphMetadata(0).OutputTensorMetadata(0).AssociatedFiles(0).Name() == b"labels.txt"
    x = [np.zeros((1, manifest["preprocess"]["resolution"], manifest["preprocess"]["resolution"], 3), np.float32)]
    np.testing.assert_array_equal(litert_outputs(out, x)[0], litert_outputs(folder / art["file"], x)[0])


def test_populate_again_replaces_the_metadata(android_bundle):
    from ai_edge_litert import schema_py_generated as s

    first = (Path(android_bundle[2].directory) / "model_int8.tflite").read_bytes()
    _, meta, _ = read_metadata(first)
    again = android.populate(first, meta, {"labels.txt": b"a\nb\n"})
    names, meta_again, _ = read_metadata(again)
    assert names.count("TFLITE_METADATA") == 1 and meta_again == meta
    assert s.Model.GetRootAs(again, 0).BuffersLength() == s.Model.GetRootAs(first, 0).BuffersLength()
    with zipfile.ZipFile(io.BytesIO(again)) as zf:  # the old archive is replaced, not stacked
        assert zf.namelist() == ["labels.txt"] and zf.read("labels.txt") == b"a\nb\n"


def test_output_that_does_not_match_the_labels_is_refused(exported_art, tmp_path):
    folder, manifest, _ = exported_art
    art = next(a for a in manifest["artifacts"] if a["format"] == "tflite" and a["precision"] == "int8")
    wrong = {**manifest, "labels": [*manifest["labels"], "extra"]}
    with pytest.raises(BadInput, match=rf"float32 output \[1, {len(wrong['labels'])}\]"):
        android.write(BundleInputs(folder, wrong, art, None), tmp_path)
