"""Machine information recorded in every report."""
from __future__ import annotations

import os
import platform
from importlib import metadata

from ..device.probe import cpu_model  # noqa: F401 - the one reading of the CPU's name (ARM boards too)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. under taskset or a container's cpuset), else the
    machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return None


def info() -> dict:
    libs = {}
    for lib in ("edgefit", "torch", "onnxruntime", "ai-edge-litert", "tensorflow", "onnx"):
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu_name(), "platform": platform.platform(),
            "python": platform.python_version(), "libraries": libs}
