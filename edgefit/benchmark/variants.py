"""`edgefit bench --variant`: untrained zoo variants, exported exactly as `edgefit export` exports a trained
run, so candidates can be timed on the target before anything is trained.

Latency does not depend on the weights' values (the int8 graph's structure does not either: the same ops,
shapes and quantize/dequantize pairs), so an untrained network with the zoo's architecture times what the
trained one will. int8 is calibrated on `--calib` images when given, else on Gaussian noise in the
normalized input space (the calibration's ranges only move the scales, not the graph).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadInput

CALIB_SAMPLES = 32


def formats_for(runtimes: tuple[str, ...]) -> str:
    wanted = [f for f, r in (("onnx", "onnxruntime"), ("tflite", "litert")) if r in runtimes]
    if not wanted:
        raise BadInput("--variant: choose --runtime onnxruntime and/or litert (the exported artifacts' runtimes)")
    return ",".join(wanted)


def export_variants(names: list[str], precisions: str, runtimes: tuple[str, ...], work: Path,
                    calib: str | None = None, num_classes: int = 1000) -> list[Path]:
    """One export directory per zoo variant in `names`, under `work`, named after the variant."""
    from .. import checkpoint, zoo
    from ..data.pipeline import Preprocess
    from ..export import export

    formats = formats_for(runtimes)
    if num_classes < 2:
        raise BadInput(f"--num-classes must be 2 or more, got {num_classes}")
    variants = [zoo.get_variant(n) for n in names]  # unknown names fail here, before any export
    out = []
    for v in variants:
        import torch

        torch.manual_seed(0)
        model = zoo.build_model(v, num_classes).eval()
        pp = Preprocess.of(model, v.resolution)
        ck = checkpoint.model_checkpoint(model, v.name, [f"class_{i}" for i in range(num_classes)], pp.to_dict(),
                                         {"source": "none: untrained, for timing only"})
        ck_path = checkpoint.save(work / "checkpoints" / f"{v.name}.pt", ck)
        source = calib or np.random.default_rng(0).standard_normal(
            (CALIB_SAMPLES, 3, v.resolution, v.resolution)).astype(np.float32)
        export(ck_path, work / v.name, formats=formats, precisions=precisions, calib=source,
               calib_samples=CALIB_SAMPLES, verify=False)
        out.append(work / v.name)
    return out


def bench_variants(names: list[str], opts, budget=None, models: list[str] = (), precisions: str = "fp32,int8",
                   calib: str | None = None, num_classes: int = 1000) -> dict:
    """`bench` over the untrained zoo variants `names` (exported to a temporary folder) and any `models`; rows
    are named `<variant>/<artifact>`. The report's `variants` says how they were made."""
    import tempfile

    from .api import bench

    opts.validate()
    if opts.data:
        raise BadInput("--data with --variant: an untrained variant has no accuracy to measure; bench the trained "
                       "export instead")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = export_variants(names, precisions, opts.runtimes, Path(tmp), calib, num_classes)
        report = bench([*models, *map(str, dirs)], opts, budget)
    report["variants"] = {"names": list(names), "weights": "untrained (timing does not depend on the values)",
                          "num_classes": num_classes, "precisions": precisions,
                          "calibration": f"{CALIB_SAMPLES} images from {calib}" if calib
                          else f"{CALIB_SAMPLES} Gaussian noise inputs"}
    return report
