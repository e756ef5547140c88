#!/usr/bin/env python3
"""classify.py: classify images with an edgefit model on any Linux board (Raspberry Pi, Jetson CPU, a server).

    python3 classify.py IMAGE_OR_DIR... [--model model_int8.tflite] [--top K] [--threads N] [--json]

Needs Python >= 3.9, numpy, Pillow and one runtime: ai-edge-litert (64-bit Linux, Python 3.10-3.13) or
tflite-runtime (32-bit ARM) for a .tflite, onnxruntime for a .onnx. It imports nothing else: no torch,
TensorFlow or edgefit. The model's labels, preprocessing, input layout and quantization come from the
edgefit.json beside it.

This file is also where edgefit itself defines how an image becomes the network's input (edgefit's training,
export and evaluation import `load_rgb`, `resize_shorter`, `center_crop` and `normalize` from it), so the
device computes exactly what the model was trained and verified on:
  1. decode, upright as a viewer shows it (EXIF orientation), RGB (alpha composited over white);
  2. resize so the shorter side is floor(resolution / crop_pct), with Pillow's antialiased filter of the
     variant's interpolation (bilinear or bicubic); the longer side is floor(size * long / short);
  3. centre crop resolution x resolution (offsets int(round((size - resolution) / 2)));
  4. float32 in [0, 1], then (x - mean) / std per channel;
  5. the artifact's layout (NHWC for .tflite, NCHW for .onnx) and, for an int8 input, round(x / scale + zp).
Output: {"path", "label", "score"} per image, score the softmax probability of the label.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIF_ORIENTATION = 274
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def fail(message: str):
    """Bad input or a missing package: one line on stderr, exit code 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


def load_rgb(path):
    """Open an image as RGB, upright as a viewer shows it (EXIF orientation applied): grayscale, 16-bit,
    palette and alpha images are converted (alpha over white)."""
    from PIL import Image, ImageOps

    img = Image.open(path)
    img.load()
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return img.convert("RGB")


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side `size` and the aspect ratio kept (the longer side floored)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def resize_shorter(img, size: int, interpolation: str = "bilinear"):
    """A PIL RGB image resized so its shorter side is `size`, with Pillow's antialiased filter."""
    from PIL import Image

    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
    if interpolation not in filters:
        raise ValueError(f"unknown interpolation {interpolation!r}; one of {', '.join(filters)}")
    new = resized_size(img.width, img.height, size)
    return img if new == img.size else img.resize(new, filters[interpolation])


def crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred size x size crop."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def center_crop(hwc, size: int):
    """The centred size x size crop of a uint8 HWC array (zero-padded where the image is smaller)."""
    import numpy as np

    h, w = hwc.shape[:2]
    if h < size or w < size:
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        hwc = np.pad(hwc, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0)))
        h, w = hwc.shape[:2]
    top, left = crop_box(h, w, size)
    return hwc[top:top + size, left:left + size]


def normalize(hwc, mean, std):
    """uint8 HWC -> float32 HWC: x / 255, then (x - mean) / std per channel."""
    import numpy as np

    x = hwc.astype(np.float32) / np.float32(255)
    return (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)


def preprocess(path, pp: dict):
    """An image file -> the float32 HWC network input of preprocessing `pp` (edgefit.json's "preprocess")."""
    import numpy as np

    size = int(pp["resize"]) if "resize" in pp else int(pp["resolution"] / pp["crop_pct"])
    img = resize_shorter(load_rgb(path), size, pp.get("interpolation", "bilinear"))
    return normalize(center_crop(np.asarray(img), int(pp["resolution"])), pp["mean"], pp["std"])


def quantize(x, scale: float, zero_point: int, dtype):
    import numpy as np

    if np.dtype(dtype).kind not in "iu" or not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(y, scale: float, zero_point: int):
    import numpy as np

    if y.dtype.kind in "iu" and scale:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y.astype(np.float32)


class Model:
    """A .tflite (ai-edge-litert, else tflite-runtime) or .onnx (onnxruntime) classifier, batch 1."""

    def __init__(self, path: Path, layout: str | None, threads: int = 0):
        import numpy as np

        self.np = np
        if path.suffix == ".onnx":
            ort = need("onnxruntime", "onnxruntime")
            so = ort.SessionOptions()
            if threads:
                so.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            self.input = self.session.get_inputs()[0].name
            self.layout = layout or "NCHW"
            self.kind = "onnxruntime"
        else:
            interpreter = tflite_interpreter()
            kw = {"num_threads": threads} if threads else {}
            self.it = interpreter(model_path=str(path), **kw)
            self.it.allocate_tensors()
            self.inp, self.out = self.it.get_input_details()[0], self.it.get_output_details()[0]
            self.layout = layout or "NHWC"
            self.kind = "tflite"

    def logits(self, hwc):
        x = hwc[None]
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        if self.kind == "onnxruntime":
            return self.session.run(None, {self.input: self.np.ascontiguousarray(x, dtype=self.np.float32)})[0][0]
        scale, zp = self.inp["quantization"]
        self.it.set_tensor(self.inp["index"], quantize(x, scale, zp, self.inp["dtype"]))
        self.it.invoke()
        scale, zp = self.out["quantization"]
        return dequantize(self.it.get_tensor(self.out["index"]), scale, zp)[0]


def need(module: str, package: str):
    """Import `module`, or stop with one line naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        fail(f"{Path(sys.argv[0]).name}: error: {module} is not installed; run `pip install {package}`")


def tflite_interpreter():
    """LiteRT's Interpreter (ai-edge-litert), else tflite-runtime's; one line naming both when neither is here."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            fail(f"{Path(sys.argv[0]).name}: error: no TFLite runtime; run `pip install ai-edge-litert` "
                 "(64-bit Linux, Python 3.10-3.13) or `pip install tflite-runtime` (32-bit ARM)")
    return Interpreter


def images_in(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            fail(f"{Path(sys.argv[0]).name}: error: {p} does not exist; give image files or folders")
    return out


def softmax(z):
    import numpy as np

    e = np.exp(z - z.max())
    return e / e.sum()


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Classify images with the edgefit model beside this script.")
    ap.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    ap.add_argument("--model", default=None, help="model file [the one named in edgefit.json's deploy entry]")
    ap.add_argument("--top", type=int, default=1, help="labels per image [1]")
    ap.add_argument("--threads", type=int, default=0, help="runtime threads [the runtime's default]")
    ap.add_argument("--json", action="store_true", help="print a JSON list of {path, label, score}")
    args = ap.parse_args(argv)
    manifest_path = here / "edgefit.json"
    if not manifest_path.is_file():
        fail(f"{Path(sys.argv[0]).name}: error: {manifest_path} is missing; keep classify.py beside its model")
    manifest = json.loads(manifest_path.read_text())
    name = args.model or (manifest.get("deploy") or {}).get("model") or manifest["artifacts"][0]["file"]
    path = Path(name) if Path(name).is_absolute() else here / name
    entry = next((a for a in manifest["artifacts"] if a["file"] == path.name), {})
    if not path.is_file():
        fail(f"{Path(sys.argv[0]).name}: error: model {path} not found")
    if args.top < 1:
        fail(f"{Path(sys.argv[0]).name}: error: --top must be 1 or more")
    import numpy as np

    model = Model(path, entry.get("input_layout"), args.threads)
    labels = manifest["labels"]
    results, failed = [], 0
    for img in images_in(args.images):
        try:
            x = preprocess(img, manifest["preprocess"])
        except Exception as e:  # noqa: BLE001 - any decoder failure: say which file and go on
            print(f"{Path(sys.argv[0]).name}: skipped {img}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
            failed += 1
            continue
        p = softmax(model.logits(x).astype(np.float64))
        order = np.argsort(-p, kind="stable")[:args.top]
        r = {"path": str(img), "label": labels[int(order[0])], "score": round(float(p[order[0]]), 6)}
        if args.top > 1:
            r["top"] = [{"label": labels[int(i)], "score": round(float(p[i]), 6)} for i in order]
        results.append(r)
        if not args.json:
            print(f"{img}\t" + "\t".join(f"{labels[int(i)]} {p[i]:.3f}" for i in order), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
