"""The base of every typed result edgefit hands from one stage to the next: a frozen dataclass that
round-trips through JSON (`to_dict` / `from_dict`), so a record written to disk reads back the same."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """A frozen dataclass that round-trips through JSON: nested records are rebuilt from their dicts."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue  # a field added later keeps its default on an older record
            kwargs[f.name] = _rebuild(hints[f.name], d[f.name])
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{cls.__name__} record lacks {', '.join(missing)}")
        return cls(**kwargs)


def _rebuild(hint, value):
    if value is None:
        return None
    if typing.get_origin(hint) is list and isinstance(value, list):  # list[SomeRecord]
        (item,) = typing.get_args(hint) or (None,)
        if isinstance(item, type) and issubclass(item, Record):
            return [item.from_dict(v) if isinstance(v, dict) else v for v in value]
        return value
    for t in typing.get_args(hint) or (hint,):  # X | None
        if isinstance(t, type) and issubclass(t, Record) and isinstance(value, dict):
            return t.from_dict(value)
    return value
