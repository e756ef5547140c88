"""The one precision vocabulary. Budgets say int8 | float16 | float32 (a contract other tools rely on),
export options and file names say int8 | fp16 | fp32; both spellings parse to the same `Precision`."""
from __future__ import annotations

from enum import Enum

from .errors import BadInput, did_you_mean


class Precision(str, Enum):
    INT8 = "int8"
    FP16 = "fp16"
    FP32 = "fp32"

    @property
    def budget_name(self) -> str:
        """The budget file's spelling."""
        return {"int8": "int8", "fp16": "float16", "fp32": "float32"}[self.value]

    @property
    def bytes_per_element(self) -> int:
        return {"int8": 1, "fp16": 2, "fp32": 4}[self.value]

    @classmethod
    def parse(cls, name) -> Precision:
        """int8, fp16/float16, fp32/float32 (or a Precision) -> Precision; BadInput otherwise."""
        if isinstance(name, cls):
            return name
        key = _ALIASES.get(str(name).strip().lower())
        if key is None:
            raise BadInput(f"unknown precision '{name}'{did_you_mean(name, _ALIASES)}; "
                           "use int8, fp16 (float16) or fp32 (float32)")
        return cls(key)


_ALIASES = {"int8": "int8", "fp16": "fp16", "float16": "fp16", "fp32": "fp32", "float32": "fp32"}
