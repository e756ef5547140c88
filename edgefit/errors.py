"""Domain errors. The CLI maps each to an exit code and prints its message as one line."""
from __future__ import annotations

import difflib


class EdgefitError(Exception):
    """Base of every error edgefit reports to a user; `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInput(EdgefitError):
    """The user's input (file, folder, option) is wrong: exit 2."""

    exit_code = 2


class NothingFits(EdgefitError):
    """The request is valid but cannot be met: exit 1."""

    exit_code = 1


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
