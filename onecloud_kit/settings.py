"""A tiny typed settings loader: frozen dataclass fields, each with a default and a help line.

Every package declares one settings dataclass with :func:`setting` fields; this
module turns ``ANALYTICS_*`` environment variables into it and renders the
``.env.example`` and the docs' settings tables from the same declaration, so
the docs cannot drift. Settings are built once, at the edge (a command, an app
factory), and passed down: nothing below reads ``os.environ`` for them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

PREFIX = "ANALYTICS_"

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """Declare a settings field with its default and a one-line help text."""
    meta = {"help": help, "secret": secret}
    if isinstance(default, list | dict | set):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse(raw: str, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if raw.strip() == "":
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse(raw, inner, name)
    if tp is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name}: expected a boolean (1/0, true/false), got {raw!r}")
    if tp is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if tp is float:
        try:
            return float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if tp is Path:
        return Path(raw.strip())
    if tp is str:
        return raw.strip()
    if origin is typing.Literal:  # a closed set of words (a store's kind): anything else names the choices
        value = raw.strip()
        if value not in args:
            raise SettingsError(f"{name}: must be one of {', '.join(f'`{a}`' for a in args)}, got {value!r}")
        return value
    if origin is tuple:
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    raise TypeError(f"unsupported settings type {tp!r} for {name}")


def from_env(cls: type[T], environ: Mapping[str, str]) -> T:
    """Build ``cls`` from ``ANALYTICS_<FIELD>`` variables; unset ones keep their default."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in _declared(cls):
        key = env_name(f.name)
        if key in environ:
            values[f.name] = _parse(environ[key], hints[f.name], key)
    return cls(**values)


class FromEnv:
    """Mixin of every package's settings dataclass: ``Settings.from_env()`` reads and validates."""

    __slots__ = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        settings = from_env(cls, os.environ if environ is None else environ)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Checks across fields, naming the variable at fault (:class:`SettingsError`)."""


def check_cidrs(variable: str, values: tuple[str, ...]) -> None:
    for cidr in values:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise SettingsError(f"{variable}: {cidr!r} is not a CIDR") from None


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _declared(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    """The settings: a field with ``init=False`` is an instance's own cache (say, a client), not a setting."""
    return [f for f in dataclasses.fields(cls) if f.init]


def describe(cls: type[Any]) -> list[tuple[str, str, str]]:
    """(variable, default as written in the environment, help) for every field."""
    rows = []
    for f in _declared(cls):
        rows.append((env_name(f.name), _render(f.default), str(f.metadata.get("help", ""))))
    return rows


def env_example(cls: type[Any], title: str, skip: frozenset[str] = frozenset()) -> str:
    """The ``.env`` block of ``cls``; variables in ``skip`` (shared with a block above) are left out."""
    lines = [f"# {title}"]
    for var, default, help_ in describe(cls):
        if var in skip:
            continue
        lines.append(f"# {help_}")
        lines.append(f"{var}={default}")
    return "\n".join(lines) + "\n"


def markdown_table(cls: type[Any]) -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for var, default, help_ in describe(cls):
        shown = f"`{default}`" if default else "(empty)"
        lines.append(f"| `{var}` | {shown} | {help_} |")
    return "\n".join(lines) + "\n"
