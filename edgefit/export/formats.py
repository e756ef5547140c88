"""The one capability table of export formats: what edgefit can produce, under which file name."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput
from ..vocabulary import FORMATS, PRECISIONS


@dataclass(frozen=True)
class Target:
    format: str  # onnx | tflite
    precision: str  # fp32 | fp16 | int8
    file: str
    layout: str  # input layout of the artifact
    runtime: str


TARGETS = {
    ("onnx", "fp32"): Target("onnx", "fp32", "model.onnx", "NCHW", "onnxruntime"),
    ("onnx", "int8"): Target("onnx", "int8", "model_int8.onnx", "NCHW", "onnxruntime"),
    ("tflite", "fp32"): Target("tflite", "fp32", "model.tflite", "NHWC", "litert"),
    ("tflite", "fp16"): Target("tflite", "fp16", "model_fp16.tflite", "NHWC", "litert"),
    ("tflite", "int8"): Target("tflite", "int8", "model_int8.tflite", "NHWC", "litert"),
}
# Pairs edgefit refuses, with the reason it gives (never a silent skip).
NOT_OFFERED = {
    ("onnx", "fp16"): "edgefit has no ONNX fp16 converter among its dependencies and no fp16 onnxruntime path it "
                      "could verify on this CPU; fp16 is exported as TFLite (--format tflite)",
}
IO_TYPES = ("float", "int8")


def _split(value: str, allowed: tuple, option: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise BadInput(f"{option} is empty; choose from {', '.join(allowed)}")
    for v in items:
        if v not in allowed:
            raise BadInput(f"{option}: unknown value '{v}'; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def plan(formats: str, precisions: str, io: str = "float") -> list[Target]:
    """Validate the request before any work: every (format, precision) pair that exists, in order.
    A pair the table lacks (onnx fp16) is refused with its reason: asking for it by name is an error, and
    `--format onnx,tflite --precision fp16` names the pair that will not be written."""
    fmts = _split(formats, FORMATS, "--format")
    precs = _split(precisions, PRECISIONS, "--precision")
    if io not in IO_TYPES:
        raise BadInput(f"--io: unknown value '{io}'; choose from {', '.join(IO_TYPES)}")
    if io == "int8" and "int8" not in precs:
        raise BadInput("--io int8 applies to int8 artifacts; add int8 to --precision")
    targets = [TARGETS[(f, p)] for f in fmts for p in precs if (f, p) in TARGETS]
    for p in precs:
        if not any(t.precision == p for t in targets):
            offered = ", ".join(f for f in FORMATS if (f, p) in TARGETS)
            why = next((NOT_OFFERED[(f, p)] for f in fmts if (f, p) in NOT_OFFERED), "")
            raise BadInput(f"precision {p} is not offered for --format {','.join(fmts)}"
                           + (f" ({why})" if why else "") + f"; it is for: {offered}")
    return targets


def not_offered(formats: str, precisions: str) -> list[dict]:
    """The requested pairs `plan` leaves out because another format covers the precision, with the reason."""
    fmts = _split(formats, FORMATS, "--format")
    precs = _split(precisions, PRECISIONS, "--precision")
    return [{"format": f, "precision": p, "why": NOT_OFFERED[(f, p)]} for f in fmts for p in precs
            if (f, p) in NOT_OFFERED]
