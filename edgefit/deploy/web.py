"""The `web` bundle: a static page that classifies images in the browser with onnxruntime-web.

index.html, edgefit.mjs (edgefit's preprocessing ported to JavaScript: Pillow's alpha compositing,
antialiased resample and crop, bit for bit in Chromium on PNGs and JPEGs), model.onnx, labels.txt, an
edgefit.json trimmed to the model, and onnxruntime-web's WebAssembly build copied from its npm package (never
a CDN). The npm files come from EDGEFIT_ORT_WEB_DIR (the package's dist/ folder) or from node_modules/ in the
edgefit checkout, which `make install` fills with `npm ci` from the committed package.json and
package-lock.json.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..errors import BadInput
from .bundle import BundleInputs, Written

ORT_WEB_VERSION = "1.30.0"  # what package.json pins (a test checks they agree)
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ASSETS = Path(__file__).resolve().parent / "web_assets"
PAGE_FILES = ("index.html", "edgefit.mjs")
CHECKOUT = Path(__file__).resolve().parents[2]  # the edgefit checkout (package.json, node_modules/)
ENV = "EDGEFIT_ORT_WEB_DIR"
INTERPOLATIONS = ("bilinear", "bicubic")  # what edgefit.mjs ports from Pillow


def ort_dist() -> tuple[Path, str | None]:
    """The folder onnxruntime-web's files are copied from, and why it cannot be used (None: it can)."""
    given = os.environ.get(ENV)
    if given:
        d = Path(given).expanduser()
        d = d / "dist" if (d / "dist" / ORT_FILES[0]).is_file() else d
        missing = [f for f in ORT_FILES if not (d / f).is_file()]
        if missing:
            return d, (f"{ENV}={given} has no {', '.join(missing)}; point it at the dist/ folder of the npm "
                       f"package onnxruntime-web (npm install onnxruntime-web@{ORT_WEB_VERSION})")
        return d, None
    d = CHECKOUT / "node_modules" / "onnxruntime-web" / "dist"
    missing = [f for f in ORT_FILES if not (d / f).is_file()]
    if not missing:
        return d, None
    if (CHECKOUT / "package-lock.json").is_file():
        how = f"run `npm ci --ignore-scripts` in {CHECKOUT} (or `make install` there)"
    else:
        how = f"run `npm install onnxruntime-web@{ORT_WEB_VERSION}` in a folder of your choice"
    return d, (f"onnxruntime-web's files are missing ({d / missing[0]}): {how}, or set {ENV} to the dist/ "
               f"folder of the npm package onnxruntime-web (Node.js and npm needed)")


def ort_version(dist: Path) -> str | None:
    """The onnxruntime-web version of `dist`: its package.json, else the banner of ort.wasm.min.mjs."""
    pkg = dist.parent / "package.json"
    if pkg.is_file():
        try:
            meta = json.loads(pkg.read_text())
            if meta.get("name") == "onnxruntime-web" and meta.get("version"):
                return str(meta["version"])
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass
    with open(dist / ORT_FILES[0], encoding="utf-8", errors="replace") as f:
        m = re.search(r"ONNX Runtime Web v(\d[\w.+-]*)", f.read(2000))
    return m.group(1) if m else None


def unavailable() -> str | None:
    """Why this target cannot be written on this machine (None: it can)."""
    return ort_dist()[1]


def check(inp: BundleInputs) -> None:
    """The page feeds one float32 NCHW image and ports two Pillow filters: refuse anything else in one line."""
    art, pp = inp.artifact, inp.preprocess
    if art.get("input_layout", "NCHW") != "NCHW" or (art.get("input") or {}).get("dtype", "float32") != "float32":
        raise BadInput(f"--target web needs an ONNX model with a float32 NCHW input; {art['file']} has "
                       f"{(art.get('input') or {}).get('dtype')} {art.get('input_layout')}: export with --io float")
    interp = pp.get("interpolation", "bilinear")
    if interp not in INTERPOLATIONS:
        raise BadInput(f"--target web resizes with {' or '.join(INTERPOLATIONS)}, the model was trained with "
                       f"{interp}; choose a variant whose preprocessing uses one of them")


def write(inp: BundleInputs, folder: Path) -> Written:
    check(inp)
    dist, why = ort_dist()
    if why:
        raise BadInput(f"--target web is not available here: {why}")
    art = inp.artifact
    shutil.copyfile(inp.artifact_path, folder / "model.onnx")
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, folder / name)
    for name in ORT_FILES:
        shutil.copyfile(dist / name, folder / name)
    (folder / "labels.txt").write_text("".join(c + "\n" for c in inp.labels))
    manifest = {k: inp.manifest[k] for k in ("variant", "labels", "num_classes", "preprocess", "edgefit_version")
                if k in inp.manifest}
    manifest["artifacts"] = [dict(art, file="model.onnx")]
    manifest["deploy"] = {"target": "web", "model": "model.onnx", "source": art["file"],
                          "parity": inp.parity_line()}
    (folder / "edgefit.json").write_text(json.dumps(manifest, indent=2) + "\n")
    version = ort_version(dist)
    runtime = sum((folder / n).stat().st_size for n in ORT_FILES)
    model = (folder / "model.onnx").stat().st_size
    (folder / "README.md").write_text(readme(inp, version, model, runtime))
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return Written(
        notes=["serve the folder over HTTP (cd into it, `python3 -m http.server 8000`, open "
               "http://localhost:8000/); a file:// page cannot load the model",
               f"onnxruntime-web {version or '(version not recorded in its files)'} copied from {dist}, "
               f"{runtime / 1e6:.1f} MB; model.onnx is {art['file']} ({art['precision']})"],
        facts={"onnxruntime_web": version, "model": "model.onnx", "source": art["file"],
               "precision": art["precision"], "model_bytes": model, "runtime_bytes": runtime, "bundle_bytes": total})


def readme(inp: BundleInputs, version: str | None, model_bytes: int, runtime_bytes: int) -> str:
    art, pp = inp.artifact, inp.preprocess
    res, interp = pp["resolution"], pp.get("interpolation", "bilinear")
    source = "" if art["file"] == "model.onnx" else f", the export's {art['file']}"
    return f"""# {inp.variant}: classify images in a web browser

- `model.onnx`{source}: {art['precision']}, {model_bytes / 1e6:.2f} MB, input float32 NCHW [1, 3, {res}, {res}]
- `labels.txt` ({len(inp.labels)} classes) and `edgefit.json` (preprocessing, sha256)
- `index.html` (the page) and `edgefit.mjs` (edgefit's preprocessing and the classifier, in JavaScript)
- onnxruntime-web {version or ''}, copied from its npm package (MIT license): {', '.join(ORT_FILES)}
  ({runtime_bytes / 1e6:.1f} MB). Nothing is fetched from another site.

Parity with the trained model: {inp.parity_line()}.

## Run it

Serve the folder over HTTP; a page opened from disk (file://) cannot load the model.

```
cd web                        # this folder
python3 -m http.server 8000
# open http://localhost:8000/ and drop an image on the page (or click to pick one)
# http://localhost:8000/?img=a.png,b.png classifies a.png and b.png (paths relative to the page)
#   and writes [{{"img": "a.png", "label": "...", "score": ...}}, ...] into <pre id="results">
```

The score is the softmax probability of the label. Any static server works if it serves `.mjs` as
text/javascript and `.wasm` as application/wasm. onnxruntime-web runs one thread unless the page is
cross-origin isolated (headers `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp`); then edgefit.mjs asks for up to 4.

In your own page:

```
import {{loadClassifier}} from './edgefit.mjs';
const clf = await loadClassifier();      // fetches edgefit.json, labels.txt and model.onnx beside it
const {{label, score}} = await clf.classify(fileOrBlob);
```

## Preprocessing (edgefit's, ported from Pillow)

1. decode without colour management (`createImageBitmap` with `colorSpaceConversion: 'none'`), EXIF
   orientation applied, alpha composited over white with Pillow's integer arithmetic;
2. resize the shorter side to {pp['resize']} px with a port of Pillow's antialiased {interp} resample
   (the longer side floor({pp['resize']} x long / short));
3. centre crop {res} x {res};
4. x / 255, then (x - mean) / std with mean {pp['mean']} and std {pp['std']}, NCHW.

The browser decodes the image. In Chromium, PNGs of every kind and JPEGs decode to Pillow's pixels, so the
page computes the same input as edgefit's Python, bit for bit (edgefit's tests check this in headless
Chromium). Other browsers' decoders, JPEG's especially, may differ by a level here and there.
"""
