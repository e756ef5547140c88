"""Pictures of the mistakes: the confusion matrix with per-class scores, and a gallery of the most
confident mistakes (PNG, and a self-contained HTML page)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

GALLERY_MAX = 48
THUMB = 96


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ..fsutil import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(report, path: Path) -> None:
    import numpy as np

    plt = _plt()
    c = np.asarray(report.confusion)
    k = len(report.classes)
    rows = c / np.maximum(c.sum(1, keepdims=True), 1)
    size = min(14, 3 + 0.45 * k)
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(size + 5, size), gridspec_kw={"width_ratios": [size, 5]})
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), report.classes, rotation=90, fontsize=7)
    ax.set_yticks(range(k), report.classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if rows[i, j] > 0.5 else "black")
    ax.set_title(f"{Path(report.model).name} ({report.runtime}) on {report.split}: top-1 {report.top1:.3f}, "
                 f"{len(report.errors)} of {report.n} wrong", fontsize=9)
    tx.axis("off")
    lines = ["most confused (true -> predicted):"]
    lines += [f"  {p['true']} -> {p['predicted']}: {p['count']}" for p in report.pairs[:8]]
    lines += ["", f"{'class':<16} {'P':>5} {'R':>5} {'F1':>5} {'n':>4}"]
    lines += [f"{s['class'][:16]:<16} {s['precision']:5.2f} {s['recall']:5.2f} {s['f1']:5.2f} {s['support']:4d}"
              for s in report.per_class[:40]]
    tx.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def _thumb(root: str, rel: str):
    from PIL import Image

    from ..data.folder import load_rgb

    try:
        img = load_rgb(Path(root) / rel)
    except Exception:  # noqa: BLE001 - a file gone since the evaluation: a grey square
        return Image.new("RGB", (THUMB, THUMB), (128, 128, 128))
    img.thumbnail((THUMB, THUMB))
    return img


def gallery_png(report, path: Path) -> None:
    plt = _plt()
    shown = report.errors[:GALLERY_MAX]
    cols = 8
    rows = max(1, (len(shown) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, e in zip(axes.ravel(), shown, strict=False):
        ax.imshow(_thumb(report.root, e["path"]))
        ax.set_title(f"{e['true'][:12]}\n-> {e['predicted'][:12]} {e['confidence']:.2f}", fontsize=6)
    fig.suptitle(f"most confident mistakes ({len(shown)} of {len(report.errors)}): true -> predicted, confidence",
                 fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def gallery_html(report, path: Path) -> None:
    from ..fsutil import atomic_write_text

    cells = []
    for e in report.errors[:GALLERY_MAX * 4]:
        buf = io.BytesIO()
        _thumb(report.root, e["path"]).save(buf, format="PNG")
        src = base64.b64encode(buf.getvalue()).decode()
        top3 = ", ".join(f"{html.escape(c)} {p:.2f}" for c, p in e["top3"])
        cells.append(f'<figure><img src="data:image/png;base64,{src}"><figcaption><b>{html.escape(e["true"])}</b> '
                     f'&rarr; {html.escape(e["predicted"])} ({e["confidence"]:.2f})<br><small>{top3}<br>'
                     f'{html.escape(e["path"])}</small></figcaption></figure>')
    page = (f"<!doctype html><meta charset=utf-8><title>edgefit errors</title><style>body{{font:13px sans-serif}}"
            "figure{display:inline-block;width:170px;margin:6px;vertical-align:top}img{width:96px;image-rendering:"
            f"pixelated}}</style><h1>{len(report.errors)} mistakes of {report.n} ({html.escape(report.split)}, "
            f"top-1 {report.top1:.3f})</h1><p>Most confident first. Tag them in errors.csv.</p>" + "".join(cells))
    atomic_write_text(path, page)
