"""TensorFlow Lite for Microcontrollers: the arena a microcontroller must provide for an int8 .tflite.

The `tflite-micro` package is TFLM's own interpreter (no TensorFlow, offline). Its recording allocator
prints what the model really allocates: the head (activation tensors, planned by TFLM's memory planner)
and the tail (tensor structs, quantization parameters, op data). Their sum is the arena size the device
needs. TFLM prints to the C stderr and aborts on models it cannot run, so each measurement runs in its own
Python process:

    from edgefit.tflm import measure_arena
    a = measure_arena("artifacts/model_int8.tflite")
    print(a.total_kb, a.head_kb, a.tail_kb) if a.ok else print(a.error)
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ARENA_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
PROBE_ARENA = 256 * 1024 * 1024  # generous: the recording allocator reports what it used, not this


@dataclass(frozen=True)
class Arena:
    total_bytes: int | None
    head_bytes: int | None
    tail_bytes: int | None
    error: str | None = None  # why TFLM could not run the model (e.g. an op it has no kernel for)
    missing_ops: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_kb(self) -> float:
        return self.total_bytes / 1024

    @property
    def head_kb(self) -> float:
        return self.head_bytes / 1024

    @property
    def tail_kb(self) -> float:
        return self.tail_bytes / 1024

    def to_dict(self) -> dict:
        return {**asdict(self), "missing_ops": list(self.missing_ops)}

    def note(self) -> str:
        return (f"measured in TensorFlow Lite Micro: arena {self.total_kb:,.1f} KB = {self.head_kb:,.1f} KB "
                f"activations + {self.tail_kb:,.1f} KB persistent")


def available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def measure_arena(path: str | Path, timeout: float = 300) -> Arena:
    """Allocate and invoke `path` once in TFLM's interpreter (zero input) and read back the arena."""
    if not available():
        return Arena(None, None, None, "the tflite-micro package is not installed (pip install tflite-micro)")
    try:
        r = subprocess.run([sys.executable, "-m", "edgefit.tflm", str(path)], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return Arena(None, None, None, f"TFLM did not finish within {timeout:.0f} s")
    text = r.stdout + r.stderr
    found = {k: int(v) for k, v in ARENA_LINE.findall(text)}
    missing = tuple(dict.fromkeys(MISSING_OP.findall(text)))
    if r.returncode == 0 and {"total", "head", "tail"} <= set(found):
        return Arena(found["total"], found["head"], found["tail"])
    if missing:
        why = f"TFLM has no kernel for {', '.join(missing)}"
    else:
        lines = [ln for ln in text.splitlines() if ln.strip() and "RecordingMicroAllocator" not in ln]
        why = (lines[-1] if lines else f"exit code {r.returncode}")[:200]
    return Arena(None, None, None, why, missing)


def _main(path: str) -> None:
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    ip = runtime.Interpreter.from_file(path, arena_size=PROBE_ARENA)
    d = ip.get_input_details(0)  # edgefit's classifiers have one input
    ip.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
    ip.invoke()
    ip.print_allocations()
    sys.stderr.flush()


if __name__ == "__main__":
    _main(sys.argv[1])
