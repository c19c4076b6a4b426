"""How a setting is described, given and read: the field metadata of :class:`artistyle.StyleConfig`.

Each field of StyleConfig carries a :class:`Setting` (made with :func:`setting`): its help text,
command-line flag, metavar, units and whether the studio's page may set it. What a value may be
comes from the field's annotation (``int``, ``float``, ``str``, ``bool``, a ``Literal`` of choices,
tuples of these, ``| None``), read once by :func:`describe_fields`. The command line, the studio and
checkpoints all work from these descriptions, so a new setting is one new field.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import UsageError

__all__ = ["Setting", "as_tuple", "describe_fields", "either", "read_settings", "setting", "short_repr"]


def short_repr(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message quotes at most this much of a bad value.

    Lists and dicts are shown a few items and levels deep (:mod:`reprlib`), so a value nested thousands of
    levels deep (from a damaged checkpoint) or a huge list costs nothing and cannot recurse too deeply.
    """
    try:
        text = repr(value) if isinstance(value, (str, float, bool)) or value is None else _SHORT.repr(value)
    except (ValueError, RecursionError):  # an integer of more than 4,300 digits
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 6, 6, 4
_SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 40, 40, 40


def either(choices: Sequence[str]) -> str:
    """``a or b`` for two choices, ``a, b, c`` for more."""
    return " or ".join(choices) if len(choices) == 2 else ", ".join(choices)


def shown(value: Any) -> str:
    """A default as --help shows it: ``0.001``, ``conv1_1,conv2_1``."""
    if isinstance(value, tuple):
        return ",".join(shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Setting:
    """One setting: how it is documented, given on the command line and read from JSON.

    ``help`` is the --help text (``{default}`` in it becomes the default) and ``group`` its
    section. ``flag`` defaults to ``--name-with-dashes``. ``units``: ``"px"``, or ``"bytes"``,
    which the command line reads as sizes like ``8G``. ``studio``: the studio's page may set it
    (never a file on the server, nor the server's own device or memory). ``positive``: the
    command line refuses a number under 1 as it parses. ``variadic``: given as several
    arguments (``--style-blend 0.7 0.3``) instead of comma-separated. ``path``: the value names
    a file on this machine, or (with ``choices``) one of these names. ``unset``: the default None means
    "not given": the library gives it a value that depends on other settings
    (:meth:`~artistyle.config.StyleConfig.resolved`), and JSON's null is no value for it. ``off``: the
    command line's word ``off`` gives None (the feature off). ``minimum`` and ``maximum``: the range
    :meth:`StyleConfig.validate` enforces on each value, where it is a simple one (for the studio's form;
    the check itself stays in ``validate``); a ``positive`` setting's minimum is 1 unless given. ``picture``:
    the value changes the picture painted (False: it changes only where or how a run goes, such as the device;
    :mod:`artistyle.picture` leaves it out of the picture key). The fields
    after ``choices`` come from the dataclass field and its annotation (:func:`describe_fields`).
    """

    help: str
    group: str
    flag: str | None = None
    metavar: str | None = None
    units: str | None = None
    studio: bool = True
    positive: bool = False
    variadic: bool = False
    path: bool = False
    unset: bool = False
    off: bool = False
    minimum: float | None = None
    maximum: float | None = None
    picture: bool = True
    choices: tuple[str, ...] = ()
    name: str = ""
    default: Any = None
    kind: type = str  # of one value: int, float, str or bool
    many: bool = False  # a tuple of values
    one_or_many: bool = False  # one value, or a tuple of them
    optional: bool = False  # None allowed

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--style-weight``."""
        return self.flag or "--" + self.label

    @property
    def label(self) -> str:
        """The name in messages, e.g. ``style-weight`` (as :meth:`StyleConfig.validate` says it)."""
        return self.name.replace("_", "-")

    @property
    def help_text(self) -> str:
        return self.help.replace("{default}", shown(self.default))

    def description(self) -> dict[str, Any]:
        """The setting as JSON, for a form built from it (the studio's More settings).

        ``kind`` is ``int``, ``float``, ``str`` or ``bool`` (of one value); ``many``: a list of them;
        ``one_or_many``: one value or a list; ``optional``: null allowed. ``default`` is JSON (lists for
        tuples, null where the library decides) and ``default_text`` the default as ``--help`` shows it
        (null for none). ``minimum``/``maximum``: the range of each value, where known. ``unset``: the
        library decides the default from other settings (:meth:`StyleConfig.resolved`).
        """
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {
            "name": self.name, "label": self.label, "group": self.group, "kind": self.kind.__name__,
            "many": self.many, "one_or_many": self.one_or_many, "optional": self.optional,
            "choices": list(self.choices), "default": default,
            "default_text": None if self.default is None else ("on" if self.default else "off")
            if self.kind is bool else shown(self.default),
            "minimum": self.minimum, "maximum": self.maximum, "units": self.units, "help": self.help_text,
            "unset": self.unset,
        }

    def read(self, value: Any, *, files: bool = True) -> Any:
        """``value`` from JSON, type-checked, as the field holds it (lists as tuples).

        Ranges are left to :meth:`StyleConfig.validate`, so they read as on the command line.
        ``files=False``: the value must not name a file on this machine.
        """
        if value is None:
            if self.optional and not self.unset:
                return None
            raise UsageError(f"{self.label} needs a value")
        if self.many or (self.one_or_many and isinstance(value, (list, tuple))):
            if not isinstance(value, (list, tuple)) or not value:
                raise UsageError(f"{self.label} must be a non-empty list, not {short_repr(value)}")
            return tuple(self._read_one(v, files) for v in value)
        return self._read_one(value, files)

    def _read_one(self, value: Any, files: bool) -> Any:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise UsageError(f"{self.label} must be true or false, not {short_repr(value)}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise UsageError(f"{self.label} must be a string, not {short_repr(value)}")
            if self.path and not files and value not in self.choices:
                if self.choices:
                    raise UsageError(f"{self.label} must be {', '.join(self.choices)}, not {short_repr(value)}")
                raise UsageError(f"{self.label} cannot name a file here")
            return value
        # bool is an int in Python, but JSON's true is no number.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{self.label} must be a number, not {short_repr(value)}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise UsageError(f"{self.label} must be a whole number, not {short_repr(value)}")
            return int(value)
        if not math.isfinite(value):
            raise UsageError(f"{self.label} must be a finite number, not {short_repr(value)}")
        return float(value)


def setting(default: Any, group: str, help: str, **options: Any) -> Any:
    """A dataclass field with this default, described by a :class:`Setting` in its metadata."""
    return dataclasses.field(default=default, metadata={"setting": Setting(help, group, **options)})


def describe_fields(cls: type) -> tuple[Setting, ...]:
    """Every field's :class:`Setting`, completed from the field and its annotation, in field order."""
    hints = get_type_hints(cls)
    described = []
    for f in dataclasses.fields(cls):
        meta: Setting = f.metadata["setting"]
        kind = _kind(hints[f.name], meta.choices)
        minimum = 1 if meta.minimum is None and meta.positive else meta.minimum
        described.append(dataclasses.replace(meta, name=f.name, default=f.default, minimum=minimum, **kind))
    return tuple(described)


def _kind(hint: Any, choices: tuple[str, ...]) -> dict[str, Any]:
    """What an annotation allows: ``int | tuple[int, ...] | None`` -> one int or a tuple of them, or None."""
    members = list(get_args(hint)) if get_origin(hint) in (Union, types.UnionType) else [hint]
    optional = type(None) in members
    members = [m for m in members if m is not type(None)]
    tuples = [m for m in members if get_origin(m) is tuple]
    scalars = [m for m in members if get_origin(m) is not tuple]
    one = get_args(tuples[0])[0] if tuples else scalars[0]
    if get_origin(one) is Literal:
        one, choices = str, get_args(one)
    return {"kind": one, "choices": choices, "many": not scalars, "one_or_many": bool(tuples and scalars),
            "optional": optional}


def read_settings(
    described: Sequence[Setting], data: Any, *, allowed: Collection[str] | None = None, files: bool = True
) -> dict[str, Any]:
    """Field values from a JSON object, each checked by :meth:`Setting.read`; unknown names refused."""
    if not isinstance(data, Mapping):
        raise UsageError("settings must be a JSON object")
    by_name = {s.name: s for s in described if allowed is None or s.name in allowed}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in by_name:
            raise UsageError(f"unknown setting {short_repr(name)}; known: {', '.join(by_name)}")
        values[name] = by_name[name].read(value, files=files)
    return values


def as_tuple(value: Any) -> tuple[Any, ...]:
    """``None`` -> ``()``, a scalar -> ``(scalar,)``, a sequence -> a tuple."""
    return () if value is None else tuple(value) if isinstance(value, (tuple, list)) else (value,)
