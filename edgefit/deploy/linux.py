"""The `linux` bundle: a Raspberry Pi, a Jetson's CPU, any Linux board.

The verified .tflite, labels.txt, an edgefit.json trimmed to that artifact (with `deploy.model` naming it) and
classify.py, copied verbatim from edgefit/device/classify.py: the file that defines edgefit's preprocessing
for training and evaluation too, so the board computes exactly what was verified. It needs numpy, Pillow and
ai-edge-litert (or tflite-runtime on 32-bit ARM); nothing else.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..device import classify
from .bundle import BundleInputs, Written

SCRIPT = Path(classify.__file__)


def unavailable() -> str | None:
    return None


def write(inp: BundleInputs, folder: Path) -> Written:
    art = inp.artifact
    shutil.copyfile(inp.artifact_path, folder / art["file"])
    shutil.copyfile(SCRIPT, folder / "classify.py")
    (folder / "labels.txt").write_text("".join(c + "\n" for c in inp.labels))
    manifest = {k: inp.manifest[k] for k in ("variant", "labels", "num_classes", "preprocess", "edgefit_version")
                if k in inp.manifest}
    manifest["artifacts"] = [art]
    manifest["deploy"] = {"target": "linux", "model": art["file"], "parity": inp.parity_line()}
    (folder / "edgefit.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "README.md").write_text(readme(inp))
    return Written(notes=[f"classify.py runs {art['file']} with numpy, Pillow and ai-edge-litert or tflite-runtime"])


def readme(inp: BundleInputs) -> str:
    art, pp = inp.artifact, inp.preprocess
    inp_desc = f"{art['input']['dtype']} {art['input_layout']} {art['input'].get('shape')}"
    return f"""# {inp.variant}: classify images on a Linux board

`{art['file']}` ({art['precision']}, {art['size_kb']:,.1f} KB, input {inp_desc}), `labels.txt`
({len(inp.labels)} classes), `edgefit.json` (preprocessing, quantization, sha256) and `classify.py`.

Parity with the trained model: {inp.parity_line()}.

## Run it (Raspberry Pi OS 64-bit, Ubuntu, Jetson)

```
pip install numpy pillow ai-edge-litert      # 32-bit ARM (armv7l): pip install numpy pillow tflite-runtime
python3 classify.py photo.jpg                 # label and score
python3 classify.py images/ --top 3 --threads 4
python3 classify.py images/ --json            # [{{"path", "label", "score"}}, ...]
```

Copy the whole folder to the board (for example `scp -r {Path(art['file']).parent} pi@raspberrypi.local:`):
classify.py reads `edgefit.json` beside it. It imports nothing but numpy, Pillow and the runtime.
Exit codes: 0 every image classified, 1 some file could not be read (named on stderr), 2 bad arguments
or a missing runtime (the line names the package to install).

## Preprocessing (what classify.py does, the same code edgefit trained and verified with)

1. decode, EXIF orientation applied, RGB (alpha over white);
2. resize the shorter side to {pp['resize']} px ({pp.get('interpolation', 'bilinear')}, Pillow's antialiased
   filter), the longer side floor({pp['resize']} x long / short);
3. centre crop {pp['resolution']} x {pp['resolution']};
4. x / 255, then (x - mean) / std with mean {pp['mean']} and std {pp['std']};
5. {art['input_layout']}, and for an int8 input round(x / scale + zero_point) with the model's own scale.

The score is the softmax probability of the label.
"""
