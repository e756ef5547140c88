"""`edgefit doctor`: look at the data before training on it.

One pass over an image folder (class folders, or train/ val/ [test/]; an unsplit folder is split as
`edgefit train` would split it with the same seed and fractions) that finds unreadable files, exact and
near duplicates, the same picture under two labels (label conflicts), validation or test images that
are copies of training images (leaks), class imbalance, classes too small to split or to learn from,
images smaller than the network input, mixed grayscale and colour, EXIF-rotated files, and draws
contact sheets of samples and of the training augmentation.

    from edgefit.doctor import doctor
    report = doctor("runs/demo-data", out="runs/doctor")
    print(report.passed, [f.code for f in report.findings])
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .findings import Finding

SCHEMA = "edgefit-doctor/1"
DEFAULT_RESOLUTION = 96  # the smallest input of the zoo's MobileNetV2/V3 variants


@dataclass(frozen=True)
class DoctorReport:
    root: str
    images: int
    classes: dict[str, int]
    splits: dict[str, int]
    findings: list[Finding]
    geometry: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: int = 0
    split: dict = field(default_factory=dict)  # how the folder was split: mode, seed, fractions
    sheets: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "root": self.root, "images": self.images, "classes": self.classes,
                "splits": self.splits, "split": self.split, "passed": self.passed,
                "findings": [f.to_dict() for f in self.findings], "geometry": self.geometry,
                "seconds": round(self.seconds, 2), "cached_files": self.cached, "sheets": self.sheets}

    @classmethod
    def from_dict(cls, d: dict) -> DoctorReport:
        return cls(d["root"], d["images"], d["classes"], d["splits"], [Finding.from_dict(f) for f in d["findings"]],
                   d.get("geometry", {}), d.get("seconds", 0.0), d.get("cached_files", 0), d.get("split", {}),
                   d.get("sheets", []))

    def summary(self) -> list[dict]:
        """The findings without their file lists, for a training summary or a build report."""
        return [{"code": f.code, "severity": f.severity, "message": f.message, "count": f.count,
                 "files": f.files[:10]} for f in self.findings]


def _other_files(root: Path, split) -> list[str]:
    """Files in the class folders that training does not read (by extension)."""
    from ..data.folder import IMAGE_EXTS

    folders = set()
    for files in split.files.values():
        for rel, _ in files:
            folders.add((root / rel).parent)
    if split.mode == "presplit":
        for s in ("train", "val", "validation", "valid", "test"):
            for c in split.classes:
                if (root / s / c).is_dir():
                    folders.add(root / s / c)
    else:
        folders |= {root / c for c in split.classes if (root / c).is_dir()}
    out = []
    for d in sorted(folders):
        for p in sorted(d.rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and p.suffix.lower() not in IMAGE_EXTS and not any(x.startswith(".") for x in rel.parts):
                out.append(str(rel))
    return out


def check_split(split, resolution: int = DEFAULT_RESOLUTION, near: bool = True, workers: int = 0,
                progress: Callable[[int, int], None] | None = None, others: bool = True) -> DoctorReport:
    """Every check on the images of `split` (a data.folder.Split). `near=False` is the fast check that
    `edgefit train` runs: content hashes only (exact copies: leaks, label conflicts, duplicates)."""
    from . import findings as fnd
    from .inspect import inspect_all, sha256_all

    t0 = time.perf_counter()
    root = Path(split.root)
    entries = [(rel, split.classes[label], name) for name in ("train", "val", "test")
               for rel, label in split.files[name]]
    extra = _other_files(root, split) if others else []
    paths = [rel for rel, _, _ in entries] + extra
    if near:
        records, cached = inspect_all(root, paths, workers, progress)
    else:
        records, cached = sha256_all(root, paths), 0
    bad = [(rel, records[rel]["error"]) for rel, _, _ in entries if "error" in records[rel]]
    good = [(rel, records[rel], cls, s) for rel, cls, s in entries if "error" not in records[rel]]
    foreign = [rel for rel in extra if "error" not in records[rel] and "width" in records[rel]]
    not_images = [rel for rel in extra if rel not in foreign]
    found = fnd.file_findings(bad, foreign, not_images) if near else fnd.file_findings([], [], [])
    found += fnd.duplicate_findings(root, good, near=near)
    counts = {c: 0 for c in split.classes}
    train_counts = {c: 0 for c in split.classes}
    for _, cls, s in entries:
        counts[cls] += 1
        train_counts[cls] += s == "train"
    found += fnd.balance_findings(counts, train_counts, split.problems)
    geo = {}
    if near:
        geo_found, geo = fnd.geometry_findings([(rel, r) for rel, r, _, _ in good], resolution)
        found += geo_found
    order = {"error": 0, "warning": 1, "info": 2}
    found.sort(key=lambda f: order[f.severity])
    return DoctorReport(str(root), len(entries), counts, split.counts(), found, geo, time.perf_counter() - t0, cached,
                        {"mode": split.mode, "seed": split.seed, "val_fraction": split.val_fraction,
                         "test_fraction": split.test_fraction})


def doctor(data: str | Path, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.0,
           out: str | Path | None = None, resolution: int = DEFAULT_RESOLUTION, workers: int = 0,
           progress: Callable[[int, int], None] | None = None) -> DoctorReport:
    """Check the folder `data`; with `out`, write doctor.json and the contact sheets there."""
    from ..data.folder import scan
    from ..errors import BadInput
    from ..fsutil import atomic_write_json

    if resolution < 8:
        raise BadInput(f"--resolution must be 8 or more, got {resolution}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise BadInput(f"--out {out} is a file; give a directory for doctor.json and the contact sheets")
    split = scan(data, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, lenient=True)
    report = check_split(split, resolution, near=True, workers=workers, progress=progress)
    if out is not None:
        from .sheets import write_sheets

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        bad = {f for x in report.findings if x.code == "unreadable" for f in x.files}
        sheets = write_sheets(split, out, resolution, skip=bad, seed=seed)
        report = DoctorReport(**{**report.__dict__, "sheets": sheets})
        atomic_write_json(out / "doctor.json", report.to_dict())
    return report
