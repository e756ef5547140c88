"""Resumable stages: each writes its outputs under the build directory with a hash of its inputs.

`stages/<name>.json` records {inputs_hash, inputs, outputs, seconds} once a stage has finished; a rerun
with the same inputs skips it and returns the recorded outputs. `stages/<name>.started.json` marks a
stage under way, so an interrupted stage with unchanged inputs is continued (`resume=True`), and one
whose inputs changed starts over from an empty working folder.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..fsutil import atomic_write_json
from .records import Record


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


R = TypeVar("R", bound=Record)


def _read(record: type[R], rec: dict) -> R | None:
    try:
        return record.from_dict(rec["outputs"])
    except (KeyError, TypeError, ValueError):
        return None


class Stages:
    def __init__(self, root: Path, say: Callable[[str], None]):
        self.root = root
        self.dir = root / "stages"
        self.say = say
        self.times: dict[str, dict] = {}

    def run(self, name: str, inputs: dict, fn: Callable[[bool], R], record: type[R], workdir: Path | None = None,
            resumable: bool = False) -> R:
        """Run `fn(resume)` unless a finished record with the same inputs exists; returns its outputs, a
        `record`. `workdir` (the stage's own folder) is cleared whenever the stage starts over: with new
        inputs, or after an interruption unless the stage is `resumable` (then `fn` gets resume=True)."""
        h = digest(inputs)
        done, started = self.dir / f"{name}.json", self.dir / f"{name}.started.json"
        if done.is_file():
            rec = json.loads(done.read_text())
            outputs = _read(record, rec) if rec.get("inputs_hash") == h else None
            if outputs is not None:
                self.times[name] = {"seconds": rec["seconds"], "skipped": True}
                self.say(f"[{name}] unchanged since the last run ({rec['seconds']:.1f} s then): skipped")
                return outputs
            done.unlink()  # other inputs, or a record this version cannot read: the stage runs again
        resume = resumable and started.is_file() and json.loads(started.read_text()).get("inputs_hash") == h
        if not resume and workdir is not None and workdir.exists():
            shutil.rmtree(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(started, {"inputs_hash": h})
        self.say(f"[{name}] {'continuing the interrupted stage' if resume else 'running'}")
        t = time.perf_counter()
        outputs = fn(resume)
        seconds = time.perf_counter() - t
        atomic_write_json(done, {"stage": name, "inputs_hash": h, "inputs": inputs, "outputs": outputs.to_dict(),
                                 "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        started.unlink(missing_ok=True)
        self.times[name] = {"seconds": round(seconds, 2), "skipped": False, "resumed": resume}
        return outputs
