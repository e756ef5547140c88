"""What every bundle writer shares: the verified artifact it is made of, the record it returns, and a folder
that appears at its final path only when complete.

A bundle is written only from an artifact that passed `verify`: the export's recorded verify result when the
file is still the one verified (same sha256), else verify runs now. A writer gets `BundleInputs` and writes
into an empty staging folder; `staged` moves it to its final path in one rename, so a failed writer leaves
nothing half-written there (and an older bundle at that path stays until the new one is complete).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..fsutil import staged  # noqa: F401 - writers and write_bundles stage through it
from ..record import Record
from .targets import DeployTarget

MANIFEST = "edgefit.json"


@dataclass(frozen=True)
class BundleInputs:
    """What a bundle writer is given: the export folder, its manifest, and the verified artifact (None for a
    target made from the reference checkpoint) with its parity result."""

    art_dir: Path
    manifest: dict
    artifact: dict | None
    parity: dict | None
    data: str | None = None  # images to check parity on (verify's --data), when a writer checks it itself
    samples: int = 200

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def preprocess(self) -> dict:
        return self.manifest["preprocess"]

    @property
    def variant(self) -> str:
        return self.manifest["variant"]

    @property
    def artifact_path(self) -> Path:
        if self.artifact is None:
            raise ValueError("this target is made from the reference checkpoint, not an artifact")
        return self.art_dir / self.artifact["file"]

    @property
    def reference_path(self) -> Path:
        return self.art_dir / self.manifest.get("reference_checkpoint", "reference.pt")

    def parity_line(self) -> str:
        """The artifact's verify result in words (what the bundle's README states)."""
        p = self.parity
        if not p:
            return "not verified"
        err = f", max relative error {p['max_rel_error']:.1e}" if p.get("max_rel_error") is not None else ""
        return f"top-1 agreement {p['top1_agreement']:.3f} with the trained PyTorch model{err} (edgefit verify)"


@dataclass(frozen=True)
class Written(Record):
    """What a writer reports: lines for the user, measured facts (flat JSON values), and the parity of the
    bundle's model when the writer checked it itself (ExecuTorch) or could not (Core ML)."""

    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    parity: str | None = None


@dataclass(frozen=True)
class Bundle(Record):
    """A written bundle: where it is, what it holds and what it was made of."""

    target: str
    directory: str
    artifact: str | None  # the export's file it was made from (None: the reference checkpoint)
    files: list[str]
    parity: str
    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(art_dir: Path) -> dict:
    path = art_dir / MANIFEST
    if not path.is_file():
        raise BadInput(f"{art_dir} has no {MANIFEST}; give a directory written by `edgefit export`")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{path} is not valid JSON ({e}); export again with `edgefit export`") from None


def pick_artifact(manifest: dict, target: DeployTarget) -> dict:
    """The artifact `target` is made of: its format, the most preferred precision present, the right I/O type."""
    arts = [a for a in manifest.get("artifacts", []) if a.get("format") == target.format]
    for prec in target.precisions:
        for a in arts:
            io = (a.get("input") or {}).get("dtype", "float32")
            wants_int8_io = target.io == "int8"
            if a["precision"] == prec and (io != "float32") == (wants_int8_io and prec == "int8"):
                return a
    have = ", ".join(f"{a['file']} ({a['precision']}, input {(a.get('input') or {}).get('dtype')})" for a in arts)
    io = " with int8 input/output (--io int8)" if target.io == "int8" else ""
    raise BadInput(f"--target {target.name} needs a {'/'.join(target.precisions)} {target.format} artifact{io}; "
                   f"the export has {have or 'none'}: export with --target {target.name}")


def verified(art_dir: Path, manifest: dict, artifact: dict, verify_fn) -> dict:
    """The artifact's verify result, from the export's record when the file is unchanged since, else run now by
    `verify_fn(art_dir) -> report`; a failed or stale artifact is bad input (a bundle needs a verified one)."""
    path = art_dir / artifact["file"]
    if not path.is_file():
        raise BadInput(f"{path} is listed in {MANIFEST} but missing; export again")
    if sha256_file(path) != artifact.get("sha256"):
        raise BadInput(f"{path} changed since it was exported (sha256 differs from {MANIFEST}); export again")
    report = manifest.get("verify")
    if not report or report.get("artifact_sha256", {}).get(artifact["file"]) != artifact.get("sha256"):
        report = verify_fn(art_dir)
    r = next((r for r in report.get("artifacts", []) if r["file"] == artifact["file"]), None)
    if r is None:
        raise BadInput(f"verify did not check {artifact['file']}; export again")
    if not r["passed"]:
        raise BadInput(f"{artifact['file']} failed verify ({'; '.join(r['reasons'])}); a bundle is written only from "
                       "a verified artifact: see `edgefit verify` and its fixes (QAT: `edgefit compress RUN --qat`)")
    return r


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
