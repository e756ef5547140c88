"""Benchmark: edgefit's predicted RAM against the arena TensorFlow Lite Micro really allocates.

For one variant per zoo family at its smallest resolution and at 224 px (where the family has it), 10
classes, random weights (the arena does not depend on the values): the int8 TFLite export as `edgefit
build` writes it (float I/O) and as a microcontroller build writes it (`--io int8`), each run once in
TFLM's interpreter (edgefit.tflm). Records predicted ram_kb (select's cost model), the measured arena
(total = head: activations + tail: persistent), and the prediction's error against the total.

    .venv/bin/python bench/ram_truth.py --label after [--families mobilenet_v2,...]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from record import save  # noqa: E402

from tests.conftest import make_colours  # noqa: E402


def picks(families: set[str] | None) -> list[str]:
    from edgefit import zoo

    out = []
    by_family: dict[str, list] = {}
    for v in zoo.variants():
        by_family.setdefault(v.family, []).append(v)
    for fam, vs in sorted(by_family.items()):
        if families and fam not in families:
            continue
        small = min(vs, key=lambda v: (v.resolution, v.name))
        out.append(small.name)
        at224 = sorted((v for v in vs if v.resolution == 224), key=lambda v: v.name)
        if at224 and at224[0].name != small.name:
            out.append(at224[0].name)
    return out


def main() -> None:
    import torch

    from edgefit import checkpoint, zoo
    from edgefit.costs import peak_ram_bytes, zoo_stats
    from edgefit.data.pipeline import Preprocess
    from edgefit.export import export
    from edgefit.tflm import measure_arena

    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=None)
    ap.add_argument("--label", default="current")
    args = ap.parse_args()
    stats = zoo_stats(10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "calib").mkdir()
        calib = make_colours(Path(tmp) / "calib", per_class=4, noise=40, seed=5)
        for name in picks(set(args.families.split(",")) if args.families else None):
            v = zoo.get_variant(name)
            torch.manual_seed(0)
            model = zoo.build_model(v, 10).eval()
            pp = Preprocess(v.resolution, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).to_dict()
            ck = checkpoint.save(Path(tmp) / f"{name}.pt", checkpoint.model_checkpoint(
                model, name, [f"c{i}" for i in range(10)], pp, {"source": "none"}))
            for io in ("float", "int8"):  # float I/O: the LiteRT-shaped graph; int8 I/O: a microcontroller's
                int8_for = "litert" if io == "float" else "tflite-micro"
                predicted = peak_ram_bytes(stats[name], "int8", io, int8_for) / 1024
                art = Path(tmp) / f"{name}-{io}"
                export(ck, art, formats="tflite", precisions="int8", io=io, calib=str(calib), calib_samples=12,
                       verify=False, int8_for=int8_for)
                a = measure_arena(art / "model_int8.tflite")
                row = {"variant": name, "io": io, "int8_for": int8_for, "predicted_kb": round(predicted, 1),
                       **({"total_kb": round(a.total_kb, 1), "head_kb": round(a.head_kb, 1),
                           "tail_kb": round(a.tail_kb, 1), "error_vs_total": round(predicted / a.total_kb - 1, 3)}
                          if a.ok else {"tflm_error": a.error})}
                rows.append(row)
                print(row, flush=True)
    ok = [r for r in rows if "error_vs_total" in r]
    save(f"ram_truth_{args.label}", {
        "benchmark": __doc__.split("\n\n")[0], "rows": rows,
        "runs_in_tflm": f"{len(ok)}/{len(rows)}",
        "worst_abs_error": max((abs(r["error_vs_total"]) for r in ok), default=None)})


if __name__ == "__main__":
    main()
