"""Safe YAML reading for user files: safe_load semantics, no aliases, no duplicate keys, size-capped."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import BadInput

MAX_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (alias bombs) and duplicate mapping keys."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(f"line {event.start_mark.line + 1} uses a YAML alias (*{event.anchor}); "
                           "aliases are not allowed here, write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _Refused(f"line {key_node.start_mark.line + 1}: key '{key}' appears twice; keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    pass


def read_yaml(path: str | Path, what: str):
    """Parse a user's YAML file; every failure is a one-line BadInput naming the file."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{what} file not found: {p}; check the path")
    if p.is_dir():
        raise BadInput(f"{p} is a directory; give the path of a {what} YAML file")
    if p.stat().st_size > MAX_BYTES:
        raise BadInput(f"{p}: {p.stat().st_size} bytes is too large for a {what} file (limit {MAX_BYTES})")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{p}: not UTF-8 text; a {what} file is YAML text") from None
    except OSError as e:
        raise BadInput(f"{p}: cannot read ({e.strerror})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader derives from SafeLoader
    except _Refused as e:
        raise BadInput(f"{p}: {e}") from None
    except yaml.constructor.ConstructorError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise BadInput(f"{p}: line {line}: {e.problem}; only plain YAML values are allowed") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BadInput(f"{p}: not valid YAML{where}: {problem}") from None
