"""The one table of deploy targets: what each bundle is built from and what it needs, validated before any work.

A target names the verified artifact its bundle is made of (format, the precisions it accepts, best first) and
what that artifact must be (int8 input/output and the TFLite Micro graph for a microcontroller). `request`
turns `--target` plus the user's `--format/--precision/--io/--int8-for` into one export request: options the
user left out are filled from the targets, options the user gave are kept, and a contradiction is one line.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput, did_you_mean


@dataclass(frozen=True)
class DeployTarget:
    name: str
    format: str | None  # the artifact format the bundle is made of; None: made from the reference checkpoint
    precisions: tuple[str, ...]  # precisions it accepts, preferred first (the first is exported by default)
    io: str | None  # required input/output type of the int8 artifact ("int8"), None: float
    summary: str
    requires: str | None = None  # a Python package the target needs beyond edgefit's own


TARGETS: dict[str, DeployTarget] = {t.name: t for t in (
    DeployTarget("tflite-micro", "tflite", ("int8",), "int8",
                 "C++ for TensorFlow Lite Micro: the model as an aligned array, an op resolver with exactly its ops, "
                 "the arena measured in TFLM, an example main.cc"),
    DeployTarget("linux", "tflite", ("int8", "fp16", "fp32"), None,
                 "a Raspberry Pi / Jetson / any Linux board: the .tflite, labels and classify.py (numpy, Pillow and "
                 "ai-edge-litert or tflite-runtime)"),
    DeployTarget("web", "onnx", ("fp32", "int8"), None,
                 "a static web page running onnxruntime-web (vendored, no CDN): classify images in the browser"),
    DeployTarget("android", "tflite", ("int8", "fp16", "fp32"), None,
                 "the .tflite with TFLite model metadata (labels, normalization) for Android Studio's ML model "
                 "binding and the LiteRT support library"),
    DeployTarget("coreml", None, ("fp32",), None,
                 "a Core ML model package (.mlpackage) with labels and preprocessing; runs on Apple platforms only",
                 requires="coremltools"),
    DeployTarget("executorch", None, ("fp32",), None,
                 "an ExecuTorch program (.pte, XNNPACK backend), verified with ExecuTorch's own runtime",
                 requires="executorch"),
)}


def parse_targets(value: str | None) -> list[DeployTarget]:
    """`--target a,b` -> the targets, in order; an unknown name is one line with a did-you-mean."""
    if not value:
        return []
    names = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not names:
        raise BadInput(f"--target is empty; choose from {', '.join(TARGETS)}")
    for n in names:
        if n not in TARGETS:
            raise BadInput(f"--target: unknown target '{n}'{did_you_mean(n, TARGETS)}; choose from "
                           f"{', '.join(TARGETS)}")
    return [TARGETS[n] for n in names]


@dataclass(frozen=True)
class ExportRequest:
    """What `export` must write so that every requested bundle has its artifact."""

    formats: str
    precisions: str
    io: str
    int8_for: str


DEFAULT = ExportRequest("onnx,tflite", "fp32,int8", "float", "litert")


def request(targets: list[DeployTarget], formats: str | None, precisions: str | None, io: str | None,
            int8_for: str | None, verify: bool = True) -> ExportRequest:
    """The export request for `targets` given the user's options (None: not given)."""
    if not targets:
        return ExportRequest(formats or DEFAULT.formats, precisions or DEFAULT.precisions, io or DEFAULT.io,
                             int8_for or DEFAULT.int8_for)
    if not verify:
        raise BadInput("--target writes a bundle only from verified artifacts; drop --no-verify")
    micro = [t for t in targets if t.io == "int8"]
    float_io = [t for t in targets if t.format == "tflite" and t.io is None]
    if micro and float_io and (precisions is None or "int8" in precisions.split(",")):
        raise BadInput(f"--target {micro[0].name} needs the int8 .tflite with int8 input/output, "
                       f"{float_io[0].name} the one with float input/output; export them into two folders")
    if micro and io == "float":
        raise BadInput(f"--target {micro[0].name} runs int8 input/output; drop --io float")
    if micro and int8_for == "litert":
        raise BadInput(f"--target {micro[0].name} needs the TFLite Micro int8 graph; drop --int8-for litert")
    fmts = [f.strip() for f in (formats or "").split(",") if f.strip()]
    precs = [p.strip() for p in (precisions or "").split(",") if p.strip()]
    for t in targets:
        if t.format is None:
            continue
        if formats is None:
            fmts.append(t.format)
        elif t.format not in fmts:
            raise BadInput(f"--target {t.name} is made from a {t.format} artifact; add {t.format} to --format")
        if precisions is None:
            if not any(p in precs for p in t.precisions):
                precs.append(t.precisions[0])
        elif not any(p in precs for p in t.precisions):
            raise BadInput(f"--target {t.name} takes a {'/'.join(t.precisions)} {t.format} artifact; add one of "
                           f"them to --precision")
    if not fmts:  # only targets made from the reference checkpoint: export what verifies it cheaply
        fmts = ["onnx"]
    if not precs:
        precs = ["fp32"]
    return ExportRequest(",".join(dict.fromkeys(fmts)), ",".join(dict.fromkeys(precs)),
                         io or ("int8" if micro else "float"), int8_for or ("tflite-micro" if micro else "litert"))
