"""The `executorch` and `coreml` deploy bundles, made from the export's reference checkpoint: a real conversion of
the session's model each (ExecuTorch's own runtime checks the .pte; the Core ML spec is read back, as Core ML does
not run on Linux), and the one-line refusal when a target's package is missing."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgefit import checkpoint
from edgefit.deploy import coreml, executorch
from edgefit.deploy.write import write_bundles
from edgefit.errors import BadInput
from edgefit.export.parity import parity_inputs

ET_MISSING = executorch.unavailable()
CT_MISSING = coreml.unavailable()


@pytest.fixture(scope="module")
def et_bundle(exported_art, tmp_path_factory):
    if ET_MISSING:
        pytest.skip(ET_MISSING)
    folder, manifest, _ = exported_art
    out = tmp_path_factory.mktemp("et")
    (bundle,) = write_bundles(folder, "executorch", out=out)
    return bundle, folder, manifest


@pytest.fixture(scope="module")
def coreml_bundle(exported_art, tmp_path_factory):
    if CT_MISSING:
        pytest.skip(CT_MISSING)
    folder, manifest, _ = exported_art
    out = tmp_path_factory.mktemp("coreml")
    (bundle,) = write_bundles(folder, "coreml", out=out)
    return bundle, folder, manifest


def test_executorch_bundle_runs_in_executorch_and_agrees(et_bundle):
    from executorch.runtime import Runtime

    bundle, folder, manifest = et_bundle
    d = Path(bundle.directory)
    assert bundle.target == "executorch" and bundle.artifact is None  # made from reference.pt, not an artifact
    assert bundle.files == ["README.md", "labels.txt", "model.pte"]
    assert (d / "labels.txt").read_text().splitlines() == manifest["labels"]
    res, n = manifest["preprocess"]["resolution"], len(manifest["labels"])

    # what the program declares: one float32 NCHW image in, one row of logits out
    method = Runtime.get().load_program(d / "model.pte").load_method("forward")
    meta = method.metadata
    assert (meta.num_inputs(), meta.num_outputs()) == (1, 1)
    assert list(meta.input_tensor_meta(0).sizes()) == [1, 3, res, res]
    assert list(meta.output_tensor_meta(0).sizes()) == [1, n]

    # the parity the bundle states, measured again here with ExecuTorch's runtime against the PyTorch reference
    p = parity_inputs(folder)
    y = np.concatenate([method.execute([torch.from_numpy(x[None])])[0].numpy() for x in p.xs])
    agreement = float((y.argmax(1) == p.ref.argmax(1)).mean())
    rel = float(np.abs(y - p.ref).max() / (p.ref.max() - p.ref.min()))
    assert agreement >= 0.99 and rel <= 1e-4
    assert bundle.facts["top1_agreement"] == pytest.approx(agreement)
    assert bundle.facts["max_rel_error"] == pytest.approx(rel, rel=0.05, abs=1e-7)
    assert bundle.facts["parity_images"] == len(p.xs)
    assert bundle.parity.startswith(f"top-1 agreement {agreement:.3f} ") and "ExecuTorch" in bundle.parity
    assert bundle.facts["xnnpack_partitions"] >= 1 and bundle.facts["ops_outside_xnnpack"] == 0

    readme = (d / "README.md").read_text()
    for needed in (f"[1, 3, {res}, {res}]", str(manifest["preprocess"]["mean"]), str(manifest["preprocess"]["std"]),
                   "xnn_executor_runner", "executorch-android", "swiftpm-", bundle.parity):
        assert needed in readme, needed


def _spec_program(package: Path):
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_mil

    model = ct.models.MLModel(str(package), skip_model_load=True)  # Core ML itself does not run on Linux
    spec = model.get_spec()
    return spec, load_mil(spec, spec.specificationVersion, model.weights_dir).functions["main"], model


def test_coreml_bundle_spec_has_image_input_labels_and_preprocessing(coreml_bundle):
    bundle, folder, manifest = coreml_bundle
    d = Path(bundle.directory)
    pp, labels = manifest["preprocess"], manifest["labels"]
    res = pp["resolution"]
    assert bundle.target == "coreml" and bundle.artifact is None
    assert "not verified on this OS" in bundle.parity and "agreement" not in bundle.parity
    assert bundle.files == ["README.md", "labels.txt", "model.mlpackage/Data/com.apple.CoreML/model.mlmodel",
                            "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin", "model.mlpackage/Manifest.json"]
    assert (d / "labels.txt").read_text().splitlines() == labels

    spec, main, model = _spec_program(d / "model.mlpackage")
    assert spec.WhichOneof("Type") == "mlProgram"
    (inp,) = spec.description.input
    assert inp.name == "image" and inp.type.WhichOneof("Type") == "imageType"
    assert (inp.type.imageType.width, inp.type.imageType.height) == (res, res)
    assert inp.type.imageType.ColorSpace.Name(inp.type.imageType.colorSpace) == "RGB"
    outs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert outs == {"classLabel": "stringType", "classLabel_probs": "dictionaryType"}
    assert spec.description.predictedFeatureName == "classLabel"
    assert spec.description.predictedProbabilitiesName == "classLabel_probs"

    # the program: pixels x 1/255, (x - mean) * (1 / std), the network, softmax, the classifier with our labels
    ops = [op for op in main.operations if op.op_type != "const"]
    scale, sub, mul = ops[:3]
    assert [o.op_type for o in ops[:3]] == ["mul", "sub", "mul"] and scale.x.name == "image"
    assert float(scale.y.val) == pytest.approx(1 / 255)
    assert sub.x.name == scale.outputs[0].name and mul.x.name == sub.outputs[0].name
    np.testing.assert_allclose(np.ravel(sub.y.val), pp["mean"], rtol=1e-6)
    np.testing.assert_allclose(np.ravel(mul.y.val), 1 / np.array(pp["std"]), rtol=1e-6)
    assert [o.op_type for o in ops[-2:]] == ["softmax", "classify"]
    assert list(ops[-1].classes.val) == labels

    # the trained weights, not fresh ones: the classifier layer equals the reference checkpoint's
    ref = checkpoint.build_model(checkpoint.load(folder / manifest["reference_checkpoint"]))
    last = [m for m in ref.modules() if isinstance(m, torch.nn.Linear)][-1]
    (linear,) = [op for op in ops if op.op_type == "linear"]
    np.testing.assert_allclose(linear.weight.val, last.weight.detach().numpy(), rtol=1e-6, atol=1e-7)

    assert model.user_defined_metadata["edgefit.variant"] == manifest["variant"]
    readme = (d / "README.md").read_text()
    for needed in ("VNCoreMLRequest", "regionOfInterest", str(pp["mean"]), str(pp["std"]), "not verified on this OS"):
        assert needed in readme, needed


@pytest.mark.parametrize("target, package", [("executorch", "executorch"), ("coreml", "coremltools")])
def test_target_refused_in_one_line_when_its_package_is_missing(exported_art, tmp_path, monkeypatch, target,
                                                               package):
    folder, _, _ = exported_art
    monkeypatch.setitem(sys.modules, package, None)  # what Python sees when the package is not installed
    with pytest.raises(BadInput) as e:
        write_bundles(folder, target, out=tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"--target {target} is not available here: the {package} package is not installed")
    assert "\n" not in msg and f"pip install {package}" in msg
    assert list(tmp_path.iterdir()) == []  # refused before any work: nothing written
