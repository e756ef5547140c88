"""The one vocabulary: the runtimes, artifact formats and precisions edgefit names, declared once. Every other
module imports its words from here (precisions parse through precision.Precision)."""
from __future__ import annotations

from .precision import Precision

ONNXRUNTIME, LITERT, TORCH, TFLITE_MICRO = "onnxruntime", "litert", "torch", "tflite-micro"

RUNTIMES = (ONNXRUNTIME, LITERT, TORCH)  # what `bench` times on this host
RUNTIME_OF = {".onnx": ONNXRUNTIME, ".tflite": LITERT, ".pt": TORCH}  # an artifact's runtime, by its file suffix
SUFFIX_OF = {ONNXRUNTIME: ".onnx", LITERT: ".tflite"}
PROFILED_RUNTIMES = (ONNXRUNTIME, LITERT)  # latency profiles, device probes
CALIBRATED_RUNTIMES = (ONNXRUNTIME, TORCH, LITERT)  # `calibrate`'s effective FLOP/s
INT8_GRAPH_RUNTIMES = (LITERT, TFLITE_MICRO)  # what an int8 graph is shaped for (export/deploy_form.py)
BUDGET_RUNTIMES = (TFLITE_MICRO,)  # a budget's `runtime:` (a microcontroller); otherwise left out
PACKAGE_RUNTIME = {"ai-edge-litert": LITERT, "tflite-runtime": LITERT, "onnxruntime": ONNXRUNTIME}  # on a device

FORMATS = ("onnx", "tflite")
PRECISIONS = tuple(p.value for p in Precision)  # fp32 | fp16 | int8 (budgets also spell them float32 | float16)
PROFILED_PRECISIONS = (Precision.FP32.value, Precision.INT8.value)
