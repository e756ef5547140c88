"""`edgefit errors`: look at the mistakes, the practitioners' way.

Run a model (a training run's best checkpoint, or an exported .onnx/.tflite artifact in its own runtime,
so an int8 artifact's errors are its own) over a labelled split and write what a person needs to tag
the mistakes: errors.csv (one row per misclassified image, empty tag columns to fill by hand),
errors.json, a confusion matrix with per-class precision/recall/F1, and a gallery of the most confident
mistakes. `read_tags` turns a filled sheet into the error-analysis table: per tag, its share of the
errors, which bounds what fixing that cause can gain.

    from edgefit.error_analysis import analyse
    report = analyse("runs/demo-train", out="runs/demo-train/errors")
    print(report.top1, report.pairs[:3])
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInput

SCHEMA = "edgefit-errors/1"
TAGS_SCHEMA = "edgefit-error-tags/1"
FIXED_COLUMNS = ("path", "true", "predicted", "confidence", "top3")
# empty columns for a person to fill (any non-empty cell marks the tag); rename, add or drop them freely
TAG_COLUMNS = ("mislabeled", "ambiguous", "blurry", "occluded", "small_object", "unusual_view", "other")


@dataclass(frozen=True)
class ErrorReport:
    model: str
    runtime: str
    split: str
    root: str
    classes: list[str]
    n: int
    top1: float
    errors: list[dict]  # {path, true, predicted, confidence, top3}, most confident first
    confusion: list[list[int]]
    pairs: list[dict]  # {true, predicted, count}, most frequent first
    per_class: list[dict]  # {class, precision, recall, f1, support}
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["errors"] = [{k: e[k] for k in ("path", "true", "predicted", "confidence")} | {"top3": e["top3"]}
                       for e in self.errors]
        return {"schema": SCHEMA, **d}


@dataclass(frozen=True)
class _Predictions:
    probs: object  # numpy (images, classes): softmax of the model's logits
    images: object  # data.images.Images
    classes: list[str]
    runtime: str  # torch | onnxruntime | litert


def _predict(model: str | Path, split: str, data: str | None) -> _Predictions:
    import numpy as np

    from .. import checkpoint
    from ..data.images import split_images
    from ..runtimes import runner, torch_logits

    p = Path(model)
    if not p.exists():
        raise BadInput(f"model not found: {p}")
    if p.is_dir():
        if (p / "edgefit.json").is_file() and not (p / "best.pt").is_file():
            raise BadInput(f"{p} is an export directory; give one artifact file in it (e.g. {p}/model_int8.tflite)")
        source = checkpoint.open_source(p)
        images = split_images(source, "all" if data else split, data)
        logits, runtime = torch_logits(source.model(), images.x), "torch"
    elif p.suffix in (".onnx", ".tflite"):
        mf = p.parent / "edgefit.json"
        if not mf.is_file():
            raise BadInput(f"{p} has no edgefit.json beside it: its classes and preprocessing are unknown; give an "
                           "artifact written by `edgefit export`")
        manifest = json.loads(mf.read_text())
        ref = p.parent / manifest.get("reference_checkpoint", "reference.pt")
        run_dir = manifest.get("source", {}).get("run_dir")
        run_dir = Path(run_dir) if run_dir and (Path(run_dir) / "split.json").is_file() else None
        source = checkpoint.Source(ref, checkpoint.load(ref), run_dir)
        images = split_images(source, "all" if data else split, data)
        meta = next((a for a in manifest["artifacts"] if a["file"] == p.name), None)
        logits = runner(p, meta=meta)(images.x.numpy())
        runtime = "onnxruntime" if p.suffix == ".onnx" else "litert"
    else:
        raise BadInput(f"{p}: give a training run directory, a checkpoint, or an .onnx/.tflite artifact")
    z = logits - logits.max(1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return _Predictions(probs, images, source.classes, runtime)


def per_class_scores(confusion, classes: list[str]) -> list[dict]:
    import numpy as np

    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(c)
    precision = np.divide(tp, c.sum(0), out=np.zeros_like(tp), where=c.sum(0) > 0)
    recall = np.divide(tp, c.sum(1), out=np.zeros_like(tp), where=c.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return [{"class": k, "precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
             "support": int(s)} for k, p, r, f, s in zip(classes, precision, recall, f1, c.sum(1), strict=True)]


def analyse(model: str | Path, data: str | None = None, split: str = "val",
            out: str | Path | None = None) -> ErrorReport:
    """Evaluate `model` on `split` of its run (or on the labelled folder `data`) and, with `out`, write
    errors.csv, errors.json, confusion.png, gallery.png and gallery.html there."""
    import numpy as np

    if split not in ("val", "test"):
        raise BadInput(f"--split must be val or test, got {split!r}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise BadInput(f"--out {out} is a file; give a directory")
    predicted = _predict(model, split, data)
    probs, images, classes, runtime = predicted.probs, predicted.images, predicted.classes, predicted.runtime
    pred = probs.argmax(1)
    y = images.labels
    k = len(classes)
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    wrong = np.nonzero(pred != y)[0]
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    errors = [{"path": images.paths[i], "true": classes[y[i]], "predicted": classes[pred[i]],
               "confidence": round(float(probs[i, pred[i]]), 4),
               "top3": [[classes[j], round(float(probs[i, j]), 4)] for j in np.argsort(-probs[i])[:3]]}
              for i in wrong]
    pairs = sorted(({"true": classes[a], "predicted": classes[b], "count": int(confusion[a, b])}
                    for a in range(k) for b in range(k) if a != b and confusion[a, b]),
                   key=lambda p: (-p["count"], p["true"], p["predicted"]))
    report = ErrorReport(str(model), runtime, split if data is None else f"--data {data}", images.root, classes,
                         len(y), round(float((pred == y).mean()), 4), errors, confusion.tolist(), pairs,
                         per_class_scores(confusion, classes))
    if out is not None:
        report = _write(report, Path(out))
    return report


def _write(report: ErrorReport, out: Path) -> ErrorReport:
    import io

    from ..fsutil import atomic_write_json, atomic_write_text
    from .plots import confusion_png, gallery_html, gallery_png

    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*FIXED_COLUMNS, *TAG_COLUMNS])
    for e in report.errors:
        top3 = " ".join(f"{c}:{p:.3f}" for c, p in e["top3"])
        w.writerow([e["path"], e["true"], e["predicted"], f"{e['confidence']:.4f}", top3] + [""] * len(TAG_COLUMNS))
    atomic_write_text(out / "errors.csv", buf.getvalue())
    files = ["errors.csv", "errors.json", "confusion.png", "gallery.png", "gallery.html"]
    report = ErrorReport(**{**report.__dict__, "files": files})
    atomic_write_json(out / "errors.json", report.to_dict())
    confusion_png(report, out / "confusion.png")
    gallery_png(report, out / "gallery.png")
    gallery_html(report, out / "gallery.html")
    return report


def read_tags(sheet: str | Path) -> dict:
    """The error-analysis table of a filled errors.csv: per tag its count, its share of the errors, and the
    error rate if every error with that tag were fixed (error_rate x (1 - share)). `n` (images evaluated)
    comes from the errors.json beside the sheet."""
    sheet = Path(sheet)
    if not sheet.is_file():
        raise BadInput(f"tag sheet not found: {sheet}")
    summary = sheet.parent / "errors.json"
    if not summary.is_file():
        raise BadInput(f"{summary} is missing: the number of images evaluated comes from the errors.json that "
                       "`edgefit errors` wrote beside the sheet; keep them together")
    try:
        n = int(json.loads(summary.read_text())["n"])
        with open(sheet, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (ValueError, KeyError, UnicodeDecodeError, csv.Error) as e:
        raise BadInput(f"{sheet}: not an edgefit errors sheet ({e})") from None
    if not rows or "top3" not in rows[0]:
        raise BadInput(f"{sheet}: the header has no 'top3' column; tags are the columns after it")
    header = rows[0]
    start = header.index("top3") + 1
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    errors = len(body)
    if n <= 0 or errors > n:
        raise BadInput(f"{sheet}: {errors} error rows but errors.json says {n} images were evaluated")
    error_rate = errors / n
    tags = []
    for j in range(start, len(header)):
        name = header[j].strip() or f"column {j + 1}"
        count = sum(1 for r in body if j < len(r) and r[j].strip())
        share = count / errors if errors else 0.0
        tags.append({"tag": name, "count": count, "share": round(share, 4),
                     "ceiling_error_rate": round(error_rate * (1 - share), 4)})
    tags.sort(key=lambda t: (-t["count"], t["tag"]))
    return {"schema": TAGS_SCHEMA, "sheet": str(sheet), "n": n, "errors": errors, "error_rate": round(error_rate, 4),
            "untagged": sum(1 for r in body if not any(c.strip() for c in r[start:])), "tags": tags}
