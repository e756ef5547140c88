"""Writing deploy bundles: from a verified export to what a user pastes into their project.

    from edgefit.deploy.write import write_bundles
    bundles = write_bundles("artifacts", "linux,web")   # -> artifacts/linux/, artifacts/web/

Each target (targets.py, the one table) has a writer module with `unavailable() -> str | None` (why it cannot be
written on this machine, checked before any export work) and `write(BundleInputs, folder) -> Written`. The bundle
lands at `<export folder>/<target>/` (or `out/<target>/`), complete or not at all (bundle.staged).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..export.verify import verify
from . import android, coreml, executorch, linux, tflite_micro, web
from .bundle import Bundle, BundleInputs, listing, pick_artifact, read_manifest, staged, verified
from .targets import TARGETS, DeployTarget, parse_targets, request

WRITERS = {"tflite-micro": tflite_micro, "linux": linux, "web": web, "android": android, "coreml": coreml,
           "executorch": executorch}
assert set(WRITERS) == set(TARGETS), "every deploy target has a writer"

__all__ = ["Bundle", "DeployTarget", "TARGETS", "check_available", "is_export_folder", "parse_targets", "request",
           "write_bundles"]


def is_export_folder(path: str | Path) -> bool:
    """A folder written by `edgefit export` (edgefit.json, no best.pt), as opposed to a training run."""
    p = Path(path)
    return p.is_dir() and (p / "edgefit.json").is_file() and not (p / "best.pt").is_file()


def check_available(targets: list[DeployTarget]) -> None:
    """Refuse, before any work, a target this machine cannot write (its package is missing or conflicts)."""
    for t in targets:
        why = WRITERS[t.name].unavailable()
        if why:
            raise BadInput(f"--target {t.name} is not available here: {why}")


def write_bundles(art_dir: str | Path, targets: str | list[DeployTarget], out: str | Path | None = None,
                  data: str | None = None, samples: int = 200) -> list[Bundle]:
    """Write one bundle per target from the verified artifacts of `art_dir` into `out/<target>/` (default: the
    export folder itself). `data`/`samples`: the images verify uses when it has to run again."""
    art_dir = Path(art_dir)
    targets = parse_targets(targets) if isinstance(targets, str) else targets
    check_available(targets)
    manifest = read_manifest(art_dir)
    root = Path(out) if out is not None else art_dir
    bundles = []
    for t in targets:
        artifact = parity = None
        if t.format is not None:
            artifact = pick_artifact(manifest, t)
            parity = verified(art_dir, manifest, artifact, lambda d: verify(d, data=data, samples=samples))
        inp = BundleInputs(art_dir, manifest, artifact, parity, data, samples)
        dest = root / t.name
        with staged(dest) as folder:
            written = WRITERS[t.name].write(inp, folder)
            files = listing(folder)
            assert "README.md" in files, f"the {t.name} writer wrote its README.md"
        bundles.append(Bundle(target=t.name, directory=str(dest), artifact=artifact["file"] if artifact else None,
                              files=files, parity=written.parity or inp.parity_line(), notes=written.notes,
                              facts=written.facts))
    return bundles
