"""int8 against float on the host that exports: for each format written at both precisions, the two files timed
together with edgefit's one protocol (interleaved rounds, so a drift of the machine reaches both alike).

int8 is not always the faster form: on an Intel Xeon with AVX512-VNNI and AMX, V3's int8 TFLite ran 1.36x slower
than its fp32 one (issue 32), the elementwise ops of hard-swish each requantizing. Export records the ratio on
the host it ran on and says so when int8 is slower; it is a measurement of this host, not of the target.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..record import Record

SECONDS = 0.4  # per file, in 3 interleaved rounds (the protocol's warm-up comes on top)
NOTE_ABOVE = 1.1  # int8 / fp32 p50 above which export says so (closer, a timing this short cannot tell them apart)


@dataclass(frozen=True)
class PrecisionSpeed(Record):
    """One format's fp32 and int8 files, timed on this host with the runtime's default threads."""

    format: str
    runtime: str
    cpu: str
    fp32_file: str
    int8_file: str
    fp32_p50_ms: float
    int8_p50_ms: float

    @property
    def ratio(self) -> float:
        """int8's p50 over fp32's: above 1, int8 is the slower form on this host."""
        return self.int8_p50_ms / self.fp32_p50_ms

    def note(self) -> str | None:
        """The line export and the build report show when int8 does not pay on this host, else None."""
        if self.ratio <= NOTE_ABOVE:
            return None
        return (f"{self.int8_file} runs {self.ratio:.2f}x slower than {self.fp32_file} on this host ({self.cpu}, "
                f"{self.runtime}, p50 {self.int8_p50_ms:.3g} vs {self.fp32_p50_ms:.3g} ms): where this host is the "
                "target and storage allows, fp32 is the faster choice")


def compare(out: Path, artifacts: list[dict], seconds: float = SECONDS) -> list[PrecisionSpeed]:
    """Each format that has both an fp32 and an int8 artifact in `out`, timed on this host."""
    by = {(a["format"], a["precision"]): a for a in artifacts}
    return [between(out, by[fmt, "fp32"], out, by[fmt, "int8"], seconds) for fmt in sorted({f for f, _ in by})
            if (fmt, "fp32") in by and (fmt, "int8") in by]


def between(fp32_dir: Path, fp32: dict, int8_dir: Path, int8: dict, seconds: float = SECONDS) -> PrecisionSpeed:
    """One fp32 and one int8 artifact of a format (manifest entries, each in its own folder), timed together."""
    import numpy as np

    from ..device.probe import cpu_model
    from ..runtimes import one_run
    from ..timing import measure

    shape = fp32["input"]["shape"]
    nchw = shape if fp32["input_layout"] == "NCHW" else [shape[0], shape[3], shape[1], shape[2]]
    x = np.random.default_rng(0).standard_normal([1, *nchw[1:]]).astype(np.float32)
    fns = {"fp32": one_run(fp32_dir / fp32["file"], fp32["format"], x),
           "int8": one_run(int8_dir / int8["file"], int8["format"], x)}
    stats = measure(fns, min_seconds=seconds)
    return PrecisionSpeed(format=fp32["format"], runtime=fp32["runtime"], cpu=cpu_model(), fp32_file=fp32["file"],
                          int8_file=int8["file"], fp32_p50_ms=round(stats["fp32"]["p50_ms"], 4),
                          int8_p50_ms=round(stats["int8"]["p50_ms"], 4))
