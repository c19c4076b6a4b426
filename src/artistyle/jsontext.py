"""JSON text read from a file or sent by a client, parsed with a limit on how deeply it nests.

Python's :func:`json.loads` recurses once per level of nesting, so ``[[[[...]]]]`` 100,000 levels deep ends
in :class:`RecursionError`, and an integer of more than 4,300 digits in a plain :class:`ValueError`: neither
is a :class:`json.JSONDecodeError`. :func:`parse_json` turns all of them into :class:`JSONTextError`, whose
message is a short reason fit for a one-line error ("not valid JSON (Expecting value)", "nests more than 64
levels deep"), and refuses any value deeper than ``max_depth`` (so nothing that walks the value later, such as
``json.dumps(indent=...)`` or ``repr``, can recurse too deeply either). :func:`json_depth` measures a value
without recursion.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "JSONTextError", "json_depth", "parse_json"]

MAX_DEPTH = 64  # the records ArtiStyle reads nest 3 or 4 levels deep


class JSONTextError(ValueError):
    """JSON text that cannot be used: invalid, nested too deeply, or with a number too long to read."""


def json_depth(value: object) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar: 0), counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, or :class:`JSONTextError` with a short reason (see the module)."""
    too_deep = f"nests more than {max_depth} levels deep"
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTextError(too_deep) from None
    except json.JSONDecodeError as exc:
        raise JSONTextError(f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # e.g. an integer of more than sys.get_int_max_str_digits() digits
        reason = "a number has too many digits" if "digits" in str(exc) else str(exc).split(";")[0]
        raise JSONTextError(f"not valid JSON ({reason})") from None
    if json_depth(value) > max_depth:
        raise JSONTextError(too_deep)
    return value
