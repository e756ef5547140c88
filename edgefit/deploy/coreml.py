"""The `coreml` bundle: a Core ML model package (.mlpackage, ML program) with its labels and preprocessing.

The network is rebuilt from the export's reference checkpoint in the export's deploy form (export/deploy_form.py),
wrapped so that it takes what Core ML hands an image model (RGB pixels scaled to [0, 1] by the image input's
scale 1/255) and returns class probabilities: (x - mean) / std per channel in the graph (Core ML's image scale is
one number for all channels, so the per-channel std goes into the program), then the network, then a softmax.
It is captured with `torch.export` and converted by coremltools to an fp32 ML program whose input is an RGB image
of resolution x resolution and whose outputs are Core ML's classifier pair (`classLabel`, `classLabel_probs`).

Core ML runs only on Apple platforms: nothing here runs the converted model, so its parity is "not verified on
this OS"; the tests read the saved spec back (input, outputs, labels and the preprocessing ops with their values).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import checkpoint
from ..errors import NothingFits
from ..export.deploy_form import deploy_form
from ..export.tflite_export import import_tensorflow
from .bundle import BundleInputs, Written

PACKAGE = "model.mlpackage"
LABELS = "labels.txt"
INPUT = "image"
LABEL_OUT, PROBS_OUT = "classLabel", "classLabel_probs"
SCALE = 1.0 / 255.0  # the image input's scale: 8-bit pixels to [0, 1]
TARGET = "iOS15"  # the first release that runs ML programs (macOS 12, watchOS 8, tvOS 15)
PARITY = "not verified on this OS (Core ML runs only on Apple platforms; the saved spec was checked instead)"


def unavailable() -> str | None:
    """Why this target cannot be written on this machine (None: it can)."""
    if importlib.util.find_spec("coremltools") is None:
        return ("the coremltools package is not installed (pip install coremltools; coremltools 9.0 installs "
                "alongside torch 2.14.1)")
    return None


def _ct_version() -> str:
    try:
        return version("coremltools")
    except PackageNotFoundError:
        return "unknown"


def import_coremltools():
    """coremltools, quietly: it imports TensorFlow when installed, which must come after triton (tflite_export's
    import_tensorflow), and logs a warning per untested scikit-learn/TensorFlow/torch version at import."""
    if importlib.util.find_spec("tensorflow") is not None:
        import_tensorflow()
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools
    finally:
        log.setLevel(level)
    return coremltools


def normalized_classifier(model, mean: list[float], std: list[float]):
    """`model` taking RGB in [0, 1] and returning probabilities: (x - mean) / std, the network, softmax."""
    import torch
    from torch import nn

    class Normalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, x):
            return torch.softmax(self.net((x - self.mean) * self.inv_std), dim=1)

    return Normalized().eval()


def convert(model, labels: list[str], pp: dict):
    """The Core ML model (an ML program, fp32) of `model` with an RGB image input and a classifier output."""
    import torch

    ct = import_coremltools()
    res = int(pp["resolution"])
    wrapped = normalized_classifier(model, list(pp["mean"]), list(pp["std"]))
    with torch.no_grad():
        exported = torch.export.export(wrapped, (torch.rand(1, 3, res, res),)).run_decompositions({})
    progress = io.StringIO()  # coremltools draws tqdm bars for its passes on stderr
    try:
        with contextlib.redirect_stderr(progress), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # one per op from its own torch op registry
            ml = ct.convert(exported, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                            minimum_deployment_target=getattr(ct.target, TARGET),
                            inputs=[ct.ImageType(name=INPUT, shape=(1, 3, res, res), scale=SCALE, bias=[0.0, 0.0, 0.0],
                                                 color_layout=ct.colorlayout.RGB)],
                            classifier_config=ct.ClassifierConfig(list(labels), predicted_feature_name=LABEL_OUT))
    except Exception as e:  # noqa: BLE001  (coremltools raises plain exceptions for unsupported ops)
        raise NothingFits(f"coremltools {_ct_version()} could not convert {type(model).__name__} with torch "
                       f"{torch.__version__}: {str(e).splitlines()[0][:200]}; drop --target coreml") from None
    return ml


def describe(ml, inp: BundleInputs) -> None:
    """The descriptions Xcode shows for the model, its input and outputs, and edgefit's metadata."""
    pp = inp.preprocess
    res = int(pp["resolution"])
    ml.author = "edgefit"
    ml.short_description = (f"{inp.variant} image classifier ({len(inp.labels)} classes), converted by edgefit from "
                            "its PyTorch reference checkpoint")
    ml.input_description[INPUT] = f"RGB image, {res}x{res}: {crop_words(pp)}"
    ml.output_description[LABEL_OUT] = "the most probable class"
    ml.output_description[PROBS_OUT] = "the probability of each class (softmax)"
    meta = {"edgefit.variant": inp.variant, "edgefit.resolution": str(res), "edgefit.resize": str(pp["resize"]),
            "edgefit.crop_pct": str(pp["crop_pct"]), "edgefit.interpolation": pp["interpolation"],
            "edgefit.mean": ",".join(map(str, pp["mean"])), "edgefit.std": ",".join(map(str, pp["std"]))}
    ml.user_defined_metadata.update(meta)


def write(inp: BundleInputs, folder: Path) -> Written:
    import torch

    model = deploy_form(checkpoint.build_model(checkpoint.load(inp.reference_path)))
    ml = convert(model, inp.labels, inp.preprocess)
    describe(ml, inp)
    package = folder / PACKAGE
    ml.save(str(package))
    # coremltools adds ExecuTorch's debug-handle map when the source is a torch.export program; it is not part of
    # the package (Manifest.json does not list it) and nothing on a device reads it
    (package / "executorch_debug_handle_mapping.json").unlink(missing_ok=True)
    (folder / LABELS).write_text("".join(f"{c}\n" for c in inp.labels))
    size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    ct = import_coremltools()
    tested = getattr(getattr(ct, "_deps", None), "_TORCH_MAX_VERSION", None)  # what coremltools warns against
    (folder / "README.md").write_text(readme(inp, size))
    notes = [f"{PACKAGE}: {size / 1024:.1f} KB, fp32 ML program ({TARGET}+ / macOS 12+); parity {PARITY}"]
    if tested and _newer(torch.__version__, tested):
        notes.append(f"coremltools {_ct_version()} is tested with torch up to {tested}; this conversion used torch "
                     f"{torch.__version__.split('+')[0]}: check the model's predictions on a Mac")
    facts = {"file": PACKAGE, "size_bytes": size, "coremltools_version": _ct_version(), "format": "mlprogram",
             "precision": "fp32", "minimum_deployment_target": TARGET, "input": INPUT,
             "input_shape": f"1x3x{inp.preprocess['resolution']}x{inp.preprocess['resolution']}",
             "image_scale": SCALE, "classes": len(inp.labels)}
    return Written(notes=notes, facts=facts, parity=PARITY)


def _newer(have: str, tested: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("+")[0].split(".")[:3] if p.isdigit())

    return key(have) > key(tested)


def crop_words(pp: dict) -> str:
    default = f"resize the shorter side to {pp['resize']} ({pp['interpolation']}), centre crop {pp['resolution']}"
    return pp.get("resize_method") or default


def readme(inp: BundleInputs, size: int) -> str:
    pp, labels = inp.preprocess, inp.labels
    res, resize = int(pp["resolution"]), int(pp["resize"])
    filt = "BICUBIC" if pp["interpolation"] == "bicubic" else "BILINEAR"
    return f"""# {inp.variant}: Core ML model package

- `{PACKAGE}` ({size / 1024:.1f} KB): an ML program (fp32), {TARGET}+ / macOS 12+. Input `{INPUT}`: an RGB
  image of {res}x{res}. Outputs: `{LABEL_OUT}` (the most probable class) and `{PROBS_OUT}` (class -> probability).
- `{LABELS}`: the {len(labels)} class names (also inside the model).
- Parity: {PARITY}. Check a few predictions on a Mac before you ship (below).

## Preprocessing

Inside the model: pixels x 1/255 (the image input's scale), then per channel (x - mean) / std with
mean = {list(pp["mean"])} and std = {list(pp["std"])}, then the network and a softmax. Yours to do, as in
training: {crop_words(pp)}, i.e. take the centre
square whose side is {res}/{resize} of the shorter side and scale it to {res}x{res}. Vision's `.centerCrop` takes
the whole shorter side instead: set the region of interest as below.

## Xcode (Swift, Vision)

Drag `{PACKAGE}` into the project. Xcode generates a Swift class named after the file (`model`; rename the file
first, e.g. to `Classifier.mlpackage`, for a clearer name).

```swift
import CoreML
import Vision

let coreML = try model(configuration: MLModelConfiguration()).model
let request = VNCoreMLRequest(model: try VNCoreMLModel(for: coreML)) {{ request, _ in
    guard let best = (request.results as? [VNClassificationObservation])?.first else {{ return }}
    print(best.identifier, best.confidence)
}}
// edgefit's crop: the centre square of side {res}/{resize} of the shorter side, scaled to {res}x{res}
let w = CGFloat(cgImage.width), h = CGFloat(cgImage.height), side = min(w, h) * {res} / {resize}
request.regionOfInterest = CGRect(x: (1 - side / w) / 2, y: (1 - side / h) / 2, width: side / w, height: side / h)
request.imageCropAndScaleOption = .scaleFill
try VNImageRequestHandler(cgImage: cgImage, orientation: .up).perform([request])
```

Without Vision: `try model().prediction({INPUT}: pixelBuffer)` with a {res}x{res} `CVPixelBuffer` (32BGRA) that
you cropped and scaled yourself; read `.{LABEL_OUT}` and `.{PROBS_OUT}`. Vision and Core ML resample with their own
filters, not Pillow's {pp["interpolation"]}: expect small score differences from edgefit's numbers.

## Check it on a Mac (Python)

```bash
pip install coremltools=={_ct_version()} pillow
python - <<'EOF'
import coremltools as ct
from PIL import Image
m = ct.models.MLModel("{PACKAGE}")
img = Image.open("photo.jpg").convert("RGB")
w, h = img.size
img = img.resize(({resize}, {resize} * h // w) if w <= h else ({resize} * w // h, {resize}), Image.{filt})
l, t = int(round((img.width - {res}) / 2.0)), int(round((img.height - {res}) / 2.0))
print(m.predict({{"{INPUT}": img.crop((l, t, l + {res}, t + {res}))}})["{LABEL_OUT}"])
EOF
```

fp32 runs on the CPU and GPU; the Neural Engine computes in fp16 (convert with fp16 precision to use it).
"""
