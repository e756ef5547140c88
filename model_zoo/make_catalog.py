"""Regenerate model_zoo/catalog.yaml from the published tables below.

    python model_zoo/make_catalog.py

The tables are copied from their sources (named in SOURCES); every MAC and parameter count
edgefit prints is computed from the real network, never taken from here. Where no published
top-1 exists for a (width, resolution) pair, the prior is an estimate, marked as such, made by
transferring the resolution penalty of the MobileNetV2 1.0 TF-slim row (see estimate()).
"""
from __future__ import annotations

from pathlib import Path

import yaml

SOURCES = {
    "tfslim_v1": "TF-slim MobileNet V1 table, github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet_v1.md",
    "tfslim_v2": "TF-slim MobileNet V2 table, github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet/README.md",
    "tfslim_v3": "TF-slim MobileNet V3 table, github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet/README.md",
    "tflite_hosted": "TFLite hosted models, quantized table, github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/g3doc/guide/hosted_models.md",
    "mnv4_paper": "MobileNetV4 paper, ImageNet-1k results (MNv4-Conv-S 73.8 at 224, MNv4-Conv-M 79.9 at 256), arXiv:2404.10518",
}

# (width, resolution): (float top-1, 8-bit top-1 or None), percent
V1 = {
    (1.0, 224): (70.9, 69.7), (1.0, 192): (70.0, 69.0), (1.0, 160): (68.0, 67.3), (1.0, 128): (65.2, 64.0),
    (0.75, 224): (68.4, 67.9), (0.75, 192): (67.2, 66.2), (0.75, 160): (65.3, 63.9), (0.75, 128): (62.1, 59.8),
    (0.5, 224): (63.3, 62.2), (0.5, 192): (61.7, 60.4), (0.5, 160): (59.1, 57.7), (0.5, 128): (56.3, 54.9),
    (0.25, 224): (49.8, 48.2), (0.25, 192): (47.7, 45.8), (0.25, 160): (45.5, 43.5), (0.25, 128): (41.5, 39.9),
}
V2 = {
    (1.4, 224): 75.0, (1.3, 224): 74.4,
    (1.0, 224): 71.8, (1.0, 192): 70.7, (1.0, 160): 68.8, (1.0, 128): 65.3, (1.0, 96): 60.3,
    (0.75, 224): 69.8, (0.75, 192): 68.7, (0.75, 160): 66.4, (0.75, 128): 63.2, (0.75, 96): 58.8,
    (0.5, 224): 65.4, (0.5, 192): 63.9, (0.5, 160): 61.0, (0.5, 128): 57.7, (0.5, 96): 51.2,
    (0.35, 224): 60.3, (0.35, 192): 58.2, (0.35, 160): 55.7, (0.35, 128): 50.8, (0.35, 96): 45.5,
}
V2_INT8 = {(1.0, 224): 70.8}  # tflite_hosted
# family -> width -> (float top-1 at base res, 8-bit or None, source, base res, timm model, weights tag)
PUBLISHED_AT_BASE = {
    "mobilenet_v3_large": {
        1.0: (75.2, 73.9, "tfslim_v3", 224, "mobilenetv3_large_100", "mobilenetv3_large_100.ra_in1k"),
        0.75: (73.3, None, "tfslim_v3", 224, "tf_mobilenetv3_large_075", "tf_mobilenetv3_large_075.in1k"),
    },
    "mobilenet_v3_small": {
        1.0: (67.5, 64.9, "tfslim_v3", 224, "mobilenetv3_small_100", "mobilenetv3_small_100.lamb_in1k"),
        0.75: (65.4, None, "tfslim_v3", 224, "mobilenetv3_small_075", "mobilenetv3_small_075.lamb_in1k"),
    },
    "mobilenet_v3_large_minimal": {
        1.0: (72.3, 71.3, "tfslim_v3", 224, "tf_mobilenetv3_large_minimal_100", "tf_mobilenetv3_large_minimal_100.in1k"),
    },
    "mobilenet_v3_small_minimal": {
        1.0: (61.9, None, "tfslim_v3", 224, "tf_mobilenetv3_small_minimal_100", "tf_mobilenetv3_small_minimal_100.in1k"),
    },
    "mobilenet_v4_conv_small": {
        1.0: (73.8, None, "mnv4_paper", 224, "mobilenetv4_conv_small", "mobilenetv4_conv_small.e2400_r224_in1k"),
    },
    "mobilenet_v4_conv_medium": {
        1.0: (79.9, None, "mnv4_paper", 256, "mobilenetv4_conv_medium", "mobilenetv4_conv_medium.e500_r256_in1k"),
    },
}
RESOLUTIONS = {
    "mobilenet_v3_large": [224, 192, 160, 128, 96],
    "mobilenet_v3_small": [224, 192, 160, 128, 96],
    "mobilenet_v3_large_minimal": [224, 192, 160, 128, 96],
    "mobilenet_v3_small_minimal": [224, 192, 160, 128, 96],
    "mobilenet_v4_conv_small": [224, 192, 160, 128],
    "mobilenet_v4_conv_medium": [256, 224, 192, 160],
}
V1_WEIGHTS = {1.0: "mobilenetv1_100.ra4_e3600_r224_in1k"}
V2_ARCH = {0.35: "mobilenetv2_035", 0.5: "mobilenetv2_050", 0.75: "mobilenetv2_075", 1.0: "mobilenetv2_100",
           1.3: "mobilenetv2_130", 1.4: "mobilenetv2_140"}
V2_WEIGHTS = {0.5: "mobilenetv2_050.lamb_in1k", 1.0: "mobilenetv2_100.ra_in1k", 1.4: "mobilenetv2_140.ra_in1k"}
ESTIMATE_METHOD = ("no published top-1 at this resolution: published top-1 at {base} px plus the change the "
                   "TF-slim MobileNetV2 1.0 row shows between 224 px and 224*{res}/{base} px (linear in resolution)")


def v2_curve(res: float) -> float:
    """TF-slim MobileNetV2 1.0 top-1 as a piecewise-linear function of resolution."""
    pts = sorted((r, a) for (w, r), a in V2.items() if w == 1.0)
    if res <= pts[0][0]:
        (r0, a0), (r1, a1) = pts[0], pts[1]
    elif res >= pts[-1][0]:
        (r0, a0), (r1, a1) = pts[-2], pts[-1]
    else:
        i = next(i for i in range(1, len(pts)) if pts[i][0] >= res)
        (r0, a0), (r1, a1) = pts[i - 1], pts[i]
    return a0 + (a1 - a0) * (res - r0) / (r1 - r0)


def estimate(top1_at_base: float, base: int, res: int) -> float:
    return round(top1_at_base + v2_curve(224 * res / base) - v2_curve(224), 1)


def wname(w: float) -> str:
    return f"{w:.2f}".rstrip("0").rstrip(".") if w != 1.0 else "1.0"


def entry(family, w, res, builder, top1, top1_src, int8, int8_src, weights, estimated=None):
    e = {
        "name": f"{family}_{wname(w)}_{res}",
        "family": family,
        "width": w,
        "resolution": res,
        "builder": builder,
        "accuracy": {"float": round(top1 / 100, 4), "float_source": top1_src},
        "weights": {"timm": weights} if weights else None,
    }
    if int8 is not None:
        e["accuracy"]["int8"] = round(int8 / 100, 4)
        e["accuracy"]["int8_source"] = int8_src
    if estimated:
        e["accuracy"]["estimated"] = True
        e["accuracy"]["method"] = estimated
    return e


def variants():
    out = []
    for (w, res), (top1, q) in V1.items():
        b = {"lib": "timm", "gen": "efficientnet._gen_mobilenet_v1",
             "arch": "mobilenetv1_100" if w == 1.0 else f"mobilenetv1_{int(w * 100):03d}", "multiplier": w}
        out.append(entry("mobilenet_v1", w, res, b, top1, "tfslim_v1", q, "tfslim_v1", V1_WEIGHTS.get(w)))
    for (w, res), top1 in V2.items():
        b = {"lib": "timm", "gen": "efficientnet._gen_mobilenet_v2", "arch": V2_ARCH[w], "multiplier": w}
        q = V2_INT8.get((w, res))
        out.append(entry("mobilenet_v2", w, res, b, top1, "tfslim_v2", q, "tflite_hosted", V2_WEIGHTS.get(w)))
    for family, widths in PUBLISHED_AT_BASE.items():
        for w, (top1, q, src, base, model, weights) in widths.items():
            for res in RESOLUTIONS[family]:
                b = {"lib": "timm", "model": model}
                if res == base:
                    out.append(entry(family, w, res, b, top1, src, q, src, weights))
                else:
                    method = ESTIMATE_METHOD.format(base=base, res=res)
                    out.append(entry(family, w, res, b, estimate(top1, base, res), src + " (estimated)",
                                     None, None, weights, estimated=method))
    return out


def main() -> None:
    doc = {"version": 1, "sources": SOURCES, "variants": variants()}
    path = Path(__file__).with_name("catalog.yaml")
    header = "# Generated by model_zoo/make_catalog.py; edit that file and rerun it.\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120))
    print(f"wrote {len(doc['variants'])} variants to {path}")


if __name__ == "__main__":
    main()
