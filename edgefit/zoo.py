"""The variant registry: the one place that maps variant names to builders and frozen metadata.

The catalog itself is data (model_zoo/catalog.yaml); this module reads it once and builds networks
through timm on demand (timm is imported lazily).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput, did_you_mean

_HERE = Path(__file__).resolve().parent


def catalog_path() -> Path:
    """Installed wheels carry the catalog as edgefit/model_zoo; a source checkout has it at model_zoo/."""
    for candidate in (_HERE / "model_zoo" / "catalog.yaml", _HERE.parent / "model_zoo" / "catalog.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("model_zoo/catalog.yaml is missing from the edgefit installation")


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    width: float
    resolution: int
    builder: tuple  # sorted (key, value) pairs, hashable
    accuracy_float: float
    accuracy_float_source: str
    accuracy_int8: float | None
    accuracy_int8_source: str | None
    accuracy_estimated: bool
    accuracy_method: str | None
    weights: str | None  # timm pretrained tag, or None

    @property
    def builder_spec(self) -> dict:
        return dict(self.builder)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "family": self.family, "width": self.width, "resolution": self.resolution,
            "accuracy_prior": self.accuracy_float, "accuracy_prior_source": self.accuracy_float_source,
            "accuracy_prior_int8": self.accuracy_int8, "accuracy_prior_int8_source": self.accuracy_int8_source,
            "accuracy_prior_estimated": self.accuracy_estimated, "accuracy_prior_method": self.accuracy_method,
            "weights": self.weights, "builder": self.builder_spec,
        }


@functools.lru_cache(maxsize=1)
def _catalog() -> tuple[dict, dict]:
    import yaml

    path = catalog_path()
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    sources = doc["sources"]
    variants: dict[str, Variant] = {}
    for e in doc["variants"]:
        acc = e["accuracy"]
        src = acc["float_source"].split(" ")[0]
        if src not in sources:
            raise ValueError(f"catalog: {e['name']} cites unknown source {src}")
        if e["builder"].get("lib") != "timm":
            raise ValueError(f"catalog: {e['name']} has unsupported builder lib {e['builder'].get('lib')}")
        variants[e["name"]] = Variant(
            name=e["name"], family=e["family"], width=float(e["width"]), resolution=int(e["resolution"]),
            builder=tuple(sorted(e["builder"].items())),
            accuracy_float=float(acc["float"]), accuracy_float_source=acc["float_source"],
            accuracy_int8=acc.get("int8"), accuracy_int8_source=acc.get("int8_source"),
            accuracy_estimated=bool(acc.get("estimated", False)), accuracy_method=acc.get("method"),
            weights=(e.get("weights") or {}).get("timm"),
        )
    return variants, sources


def variants() -> list[Variant]:
    return list(_catalog()[0].values())


def sources() -> dict:
    return dict(_catalog()[1])


def families() -> list[str]:
    return sorted({v.family for v in variants()})


def get_variant(name: str) -> Variant:
    table = _catalog()[0]
    if name not in table:
        raise BadInput(f"unknown variant '{name}'{did_you_mean(name, table)}; `edgefit zoo` lists them")
    return table[name]


def filter_family(family: str | None) -> list[Variant]:
    """Variants of a family; 'v3', 'mobilenet_v3' and 'mobilenet_v3_small' all match by prefix."""
    if not family:
        return variants()
    want = family if family.startswith("mobilenet_") else f"mobilenet_{family}"
    found = [v for v in variants() if v.family == want or v.family.startswith(want + "_")]
    if not found:
        raise BadInput(f"unknown family '{family}'{did_you_mean(want, families())}; "
                       f"families: {', '.join(families())}")
    return found


def catalog_digest() -> str:
    return hashlib.sha256(catalog_path().read_bytes()).hexdigest()


def build_model(variant: Variant, num_classes: int):
    """Build the untrained network for `variant` with a `num_classes` classifier (timm, lazily imported).

    Pretrained weights are loaded by the training stage through timm's own mechanism.
    """
    spec = variant.builder_spec
    import timm  # noqa: F401  (registers models)

    if "model" in spec:
        return timm.create_model(spec["model"], pretrained=False, num_classes=num_classes)
    module, fn = spec["gen"].rsplit(".", 1)
    gen = getattr(importlib.import_module(f"timm.models.{module}"), fn)
    # timm warns that non-registered widths have no pretrained config; that is expected here.
    log = logging.getLogger("timm.models._builder")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return gen(spec["arch"], spec["multiplier"], pretrained=False, num_classes=num_classes)
    finally:
        log.setLevel(level)
