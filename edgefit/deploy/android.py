"""The `android` bundle: the verified .tflite with TFLite model metadata (labels, normalization), as Android Studio's
ML Model Binding, the LiteRT Support Library and the Task Library's ImageClassifier read it.

The metadata follows the published TFLite metadata schema (tflite_metadata_schema.py, flatc's code vendored from
tflite-support): a ModelMetadata flatbuffer (file identifier "M001") stored in a buffer of the model and named
"TFLITE_METADATA" in the model's `metadata` list, with labels.txt as an associated file appended to the .tflite as
a zip archive (stored, not compressed), which is what tflite-support's MetadataPopulator writes. The model
flatbuffer is rewritten with LiteRT's own schema code (ai_edge_litert.schema_py_generated, object API), no
TensorFlow. The bundle's model is run beside the verified artifact in LiteRT before the bundle is kept: their
outputs must be bit-identical, so the artifact's verify result is the bundle's. tflite-support's Task Library
ImageClassifier reads it back; MediaPipe Tasks' ImageClassifier refuses per-channel normalization.

Normalization: edgefit's mean/std apply to RGB in [0, 1]; the Support and Task Libraries apply NormalizationOptions
to 0-255 pixel values, so both are written times 255 ((255 x - 255 m) / (255 s) = (x - m) / s).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ..errors import BadInput
from . import tflite_metadata_schema as meta_fb
from .bundle import BundleInputs, Written

METADATA_NAME = "TFLITE_METADATA"  # the model's `metadata` entry the metadata readers look up
METADATA_IDENTIFIER = b"M001"  # metadata_schema.fbs: file_identifier
MODEL_IDENTIFIER = b"TFL3"  # the TFLite schema's file_identifier
# Every field written here exists since version 1.0.0 of the metadata schema; none of the later additions (the
# .fbs marks them "Added in: 1.x": vocabulary files, subgraph process units, tensor groups, file versions, custom
# metadata) is used, and MetadataPopulator computes the version the same way.
MIN_PARSER_VERSION = "1.0.0"
LABELS = "labels.txt"
PIXEL_MAX = 255.0  # the Support/Task Libraries normalize 0-255 pixel values
PARITY_INPUTS = 3  # inputs on which the bundle's model must match the verified artifact bit for bit


def unavailable() -> str | None:
    """Why this target cannot be written on this machine (None: it can). It needs ai-edge-litert (its schema
    code and interpreter) and flatbuffers, which edgefit installs."""
    return None


def normalization(preprocess: dict) -> tuple[list[float], list[float]]:
    """edgefit's per-channel mean/std (for RGB in [0, 1]) in the units of NormalizationOptions (0-255 pixels)."""
    return [PIXEL_MAX * m for m in preprocess["mean"]], [PIXEL_MAX * s for s in preprocess["std"]]


def input_range(preprocess: dict) -> tuple[list[float], list[float]]:
    """Per-channel (min, max) of the model input: 0 and 255 pixels normalized, as tflite-support's writers state."""
    pairs = list(zip(*normalization(preprocess), strict=True))
    return [(0.0 - m) / s for m, s in pairs], [(PIXEL_MAX - m) / s for m, s in pairs]


def _model_schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _io_tensors(model_bytes: bytes) -> tuple[list, list]:
    """([shape, type name] of each input, of each output) of the main subgraph."""
    s = _model_schema()
    g = s.Model.GetRootAs(model_bytes, 0).Subgraphs(0)
    types = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}

    def describe(index: int) -> tuple[list[int], str]:
        t = g.Tensors(index)
        return [int(d) for d in t.ShapeAsNumpy()], types[t.Type()]

    return ([describe(g.Inputs(i)) for i in range(g.InputsLength())],
            [describe(g.Outputs(i)) for i in range(g.OutputsLength())])


def _check_io(inp: BundleInputs, model_bytes: bytes) -> tuple[int, int]:
    """The image (height, width) of a float32 NHWC RGB classifier whose output has one score per label."""
    ins, outs = _io_tensors(model_bytes)
    name = inp.artifact["file"]
    if len(ins) != 1 or len(ins[0][0]) != 4 or ins[0][0][3] != 3 or ins[0][1] != "FLOAT32":
        raise BadInput(f"{name}: the android bundle needs one float32 NHWC RGB image input, the model has "
                       f"{ins}; export again with --target android")
    n = len(inp.labels)
    if len(outs) != 1 or outs[0][1] != "FLOAT32" or outs[0][0] != [1, n]:
        raise BadInput(f"{name}: the android bundle needs one float32 output [1, {n}] (one score per label), the "
                       f"model has {outs}; export again with --target android")
    return ins[0][0][1], ins[0][0][2]


def metadata(inp: BundleInputs, height: int, width: int) -> bytes:
    """The ModelMetadata flatbuffer (identifier M001) for edgefit's classifier."""
    pre, art = inp.preprocess, inp.artifact
    mean, std = normalization(pre)
    labels = inp.labels

    image = meta_fb.TensorMetadataT()
    image.name = "image"
    image.description = (f"RGB image {width}x{height}, float32 NHWC. edgefit's preprocessing: {pre['resize_method']} "
                         "(verify measured parity with it), then (pixel - mean) / std on 0-255 pixel values.")
    image.content = meta_fb.ContentT()
    image.content.contentPropertiesType = meta_fb.ContentProperties.ImageProperties
    image.content.contentProperties = meta_fb.ImagePropertiesT()
    image.content.contentProperties.colorSpace = meta_fb.ColorSpaceType.RGB
    image.content.contentProperties.defaultSize = meta_fb.ImageSizeT()
    image.content.contentProperties.defaultSize.width = width
    image.content.contentProperties.defaultSize.height = height
    norm = meta_fb.ProcessUnitT()
    norm.optionsType = meta_fb.ProcessUnitOptions.NormalizationOptions
    norm.options = meta_fb.NormalizationOptionsT()
    norm.options.mean, norm.options.std = mean, std
    image.processUnits = [norm]
    image.stats = meta_fb.StatsT()
    image.stats.min, image.stats.max = input_range(pre)

    scores = meta_fb.TensorMetadataT()
    scores.name = "logits"
    scores.description = (f"Scores of the {len(labels)} classes, in the order of {LABELS}: logits, not "
                          "probabilities (apply softmax for probabilities).")
    scores.content = meta_fb.ContentT()
    scores.content.contentPropertiesType = meta_fb.ContentProperties.FeatureProperties
    scores.content.contentProperties = meta_fb.FeaturePropertiesT()
    label_file = meta_fb.AssociatedFileT()
    label_file.name = LABELS
    label_file.description = f"The {len(labels)} class labels, one per line, in the order of the output."
    label_file.type = meta_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    scores.associatedFiles = [label_file]

    graph = meta_fb.SubGraphMetadataT()
    graph.name = "image_classifier"
    graph.description = f"Classifies an image into one of {len(labels)} classes."
    graph.inputTensorMetadata = [image]
    graph.outputTensorMetadata = [scores]

    model = meta_fb.ModelMetadataT()
    model.name = f"{inp.variant} ({art['precision']})"
    model.description = (f"Image classifier ({inp.variant}, {art['precision']}) trained and exported by edgefit: "
                         f"{len(labels)} classes ({', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''}).")
    model.version = f"sha256:{art['sha256'][:16]} ({art['file']} as exported)"
    model.author = f"edgefit {inp.manifest.get('edgefit_version', '')}".strip()
    model.license = "Not stated by edgefit: the model's owner sets the license."
    model.subgraphMetadata = [graph]
    model.minParserVersion = MIN_PARSER_VERSION

    import flatbuffers

    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def populate(model_bytes: bytes, metadata_bytes: bytes, files: dict[str, bytes]) -> bytes:
    """`model_bytes` with `metadata_bytes` as its TFLITE_METADATA buffer (replacing one already there) and
    `files` appended as a zip archive, as tflite-support's MetadataPopulator does."""
    import numpy as np

    s = _model_schema()
    model = s.ModelT.InitFromObj(s.Model.GetRootAs(model_bytes, 0))
    buf = s.BufferT()
    buf.data = np.frombuffer(metadata_bytes, dtype=np.uint8)
    model.metadata = model.metadata or []
    model.buffers = model.buffers or []
    entry = next((m for m in model.metadata if m.name.decode() == METADATA_NAME), None)
    if entry is not None:
        model.buffers[entry.buffer] = buf
    else:
        model.buffers.append(buf)
        entry = s.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)

    import flatbuffers

    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=MODEL_IDENTIFIER)
    out = io.BytesIO(bytes(b.Output()))  # the packed model only: files zipped after an older copy are dropped
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as zf:  # ZIP_STORED: the metadata readers read stored entries in place
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _same_outputs(original: Path, bundled: Path, stats_min: list[float], stats_max: list[float]) -> int:
    """Run both models in LiteRT on seeded inputs spanning the normalized pixel range; the number of inputs on
    which their outputs are bit-identical (raises if any differs: the metadata must not change the model)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    runs = []
    for path in (original, bundled):
        it = Interpreter(model_path=str(path))
        it.allocate_tensors()
        runs.append(it)
    shape = runs[0].get_input_details()[0]["shape"]
    rng = np.random.default_rng(0)
    lo, hi = np.array(stats_min, np.float32), np.array(stats_max, np.float32)
    for i in range(PARITY_INPUTS):
        x = (lo + (hi - lo) * rng.random(shape, dtype=np.float32)).astype(np.float32)
        outs = []
        for it in runs:
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        if not np.array_equal(outs[0], outs[1]):
            raise RuntimeError(f"{bundled.name} with metadata gives other outputs than {original.name} on input {i}")
    return PARITY_INPUTS


def _readme(inp: BundleInputs, name: str, height: int, width: int, n_meta: int, checked: int) -> str:
    pre, art, labels = inp.preprocess, inp.artifact, inp.labels
    mean, std = normalization(pre)
    cls = "".join(p[:1].upper() + p[1:] for p in Path(name).stem.replace("-", "_").split("_") if p)
    side = f"{height / pre['resize']:.4f}"
    fmt = ", ".join(f"{v:.3f}" for v in mean), ", ".join(f"{v:.3f}" for v in std)
    return f"""# Android: {name} with TFLite model metadata

{inp.variant}, {art['precision']} .tflite, {len(labels)} classes: input float32 [1, {height}, {width}, 3] (NHWC, RGB),
output float32 [1, {len(labels)}] (logits, in the order of `labels.txt`).

Parity: {inp.parity_line()}.
The metadata does not change the model: in LiteRT this file's outputs are bit-identical to the verified
export's {art['file']} on {checked} inputs (checked when the bundle was written).

The model carries TFLite model metadata ({n_meta} bytes, `TFLITE_METADATA`, min parser version
{MIN_PARSER_VERSION}): the input is an RGB image with normalization mean [{fmt[0]}], std [{fmt[1]}] on
0-255 pixel values (edgefit's mean/std for [0, 1] inputs times 255); the output's labels are `labels.txt`,
packed inside the .tflite (`unzip -l {name}` lists it) and also beside it here.

## Android Studio: ML Model Binding

1. File > New > Other > TensorFlow Lite Model, choose `{name}`, accept the dependencies it adds.
2. Android Studio generates the class `{cls}` from the metadata:

```kotlin
val model = {cls}.newInstance(context)
val outputs = model.process(TensorImage.fromBitmap(bitmap))  // resizes and normalizes as the metadata says
val best = outputs.logitsAsCategoryList.maxByOrNull {{ it.score }}  // label + logit
model.close()
```

## LiteRT Task Library: ImageClassifier

Copy `{name}` to `app/src/main/assets/`; add `implementation("org.tensorflow:tensorflow-lite-task-vision:0.4.4")`.

```kotlin
val options = ImageClassifier.ImageClassifierOptions.builder().setMaxResults(3).build()
val classifier = ImageClassifier.createFromFileAndOptions(context, "{name}", options)
val categories = classifier.classify(TensorImage.fromBitmap(bitmap))[0].categories  // label, score (logit)
```

Scores are logits, not probabilities: rank them, do not set a score threshold in [0, 1]. MediaPipe Tasks'
ImageClassifier refuses this model ("Per-channel image normalization is not available": it takes one mean/std
for all channels); use ML Model Binding or the Task Library.

## Preprocessing and parity

The libraries resize the whole image to {width}x{height} (bilinear). edgefit's verify used: {pre['resize_method']}.
For results closest to the parity above, pass the center square whose side is {side} x the shorter side
(Task Library: `ImageProcessingOptions.builder().setRoi(rect)`; or crop the Bitmap first); the resize filter
still differs ({pre['interpolation']} with antialiasing in edgefit), so expect small score differences.
"""


def write(inp: BundleInputs, folder: Path) -> Written:
    name = inp.artifact["file"]
    original = inp.artifact_path.read_bytes()
    height, width = _check_io(inp, original)
    labels_txt = "".join(f"{label}\n" for label in inp.labels).encode()
    meta = metadata(inp, height, width)
    bundled = populate(original, meta, {LABELS: labels_txt})
    (folder / name).write_bytes(bundled)
    (folder / LABELS).write_bytes(labels_txt)
    checked = _same_outputs(inp.artifact_path, folder / name, *input_range(inp.preprocess))
    (folder / "README.md").write_text(_readme(inp, name, height, width, len(meta), checked))
    return Written(
        notes=[f"{name}: TFLite model metadata ({len(meta)} bytes) with labels.txt packed in; Android Studio: "
               "File > New > Other > TensorFlow Lite Model",
               f"outputs bit-identical to the verified {name} on {checked} inputs (LiteRT)"],
        facts={"model": name, "size_bytes": len(bundled), "metadata_bytes": len(meta),
               "min_parser_version": MIN_PARSER_VERSION, "identical_outputs_on_inputs": checked})
