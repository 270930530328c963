"""Typed `key=value` overrides for flat config dataclasses.

A job's configuration is a flat dataclass (a method's `Config`, or `EvalJob` for `harness eval`)
plus named sections (`eval`) that are dataclasses themselves. Overrides come from the command line
as one token each: `lr=1e-5`, `eval.budgets=[256,512,1024]`, `eval.task=math500,aime24`. Each value is
converted by the type annotation of the field it names; an unknown key or a value of the wrong type
raises `ConfigError` naming the key and the nearest valid keys.

No torch here: `harness --help` and config errors must be instant.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any


def option(default: Any, help: str, *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None) -> Any:
    """A config field with its help text written once (shown by `harness <cmd> --help`) and, for numbers,
    its valid range (`ge`/`gt`/`le`/`lt`), checked by `validate` for every config and section."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    metadata = {"help": help, "bounds": bounds}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_BOUND_TEXT = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_BOUND_TEST = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b,
               "lt": lambda v, b: v < b}


def check_bounds(cfg: Any, prefix: str = "") -> None:
    """Every numeric field (or list of numbers) within its declared range, and finite."""
    import math

    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{prefix}{f.name} must be a finite number, got {v}")
            for kind, bound in f.metadata.get("bounds", {}).items():
                if not _BOUND_TEST[kind](v, bound):
                    raise ConfigError(f"{prefix}{f.name} must be {_BOUND_TEXT[kind]} {bound:g}, got {v:g}")


class ConfigError(ValueError):
    """A bad override or config value; the message is meant for the user as is."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null", "~"}


def _strip_brackets(text: str) -> str:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    return text


def convert(value: str, annotation: Any, key: str) -> Any:
    """Convert the string `value` to the type `annotation` of field `key`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if type(None) in args and value.strip().lower() in _NONE:
            return None
        if len(non_none) == 1:
            return convert(value, non_none[0], key)
        raise ConfigError(f"{key}: unsupported union type {annotation}")
    if origin in (list, tuple):
        (item_type,) = args[:1] or (str,)
        inner = _strip_brackets(value)
        items = [p.strip() for p in inner.split(",") if p.strip()] if inner.strip() else []
        converted = [convert(item.strip("'\""), item_type, key) for item in items]
        return converted if origin is list else tuple(converted)
    if annotation is bool:
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        try:
            return int(value)
        except ValueError:
            try:  # accept 1e3 for ints when it is integral
                as_float = float(value)
            except ValueError:
                as_float = None
            if as_float is not None and as_float.is_integer():
                return int(as_float)
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if annotation is float:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if annotation is str:
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation}")


def check_type(value: Any, annotation: Any, key: str) -> Any:
    """A Python value (not a command-line string) checked against the type `annotation` of field `key`: the
    value, with ints taken as floats and tuples as lists where the field says so; a string is converted as on the
    command line (so `task="math500,aime24"` works from Python too). ConfigError naming the key otherwise."""
    if isinstance(value, str):
        return convert(value, annotation, key)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return check_type(value, non_none[0], key)
        raise ConfigError(f"{key}: unsupported union type {annotation}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]  # one value where a list is swept: budgets=64 means [64]
        (item_type,) = args[:1] or (str,)
        items = [check_type(v, item_type, key) for v in value]
        return items if origin is list else tuple(items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        import os

        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {annotation}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def valid_keys(cfg: Any, prefix: str = "") -> list[str]:
    """All dotted keys a config instance accepts, sections included."""
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(valid_keys(value, prefix + f.name + "."))
        else:
            keys.append(prefix + f.name)
    return keys


def suggest(key: str, candidates: list[str], n: int = 3) -> str:
    close = difflib.get_close_matches(key, candidates, n=n, cutoff=0.5)
    if not close:  # fall back to the same leaf name in another section
        leaf = key.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf][:n]
    return f" Did you mean: {', '.join(close)}?" if close else ""


def parse_tokens(tokens: list[str]) -> dict[str, str]:
    """`["a=1", "eval.k=2"]` -> `{"a": "1", "eval.k": "2"}`; a token without '=' is an error."""
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {token!r} is not of the form key=value")
        if key in out:
            raise ConfigError(f"override {key!r} given twice")
        out[key] = value
    return out


def apply_overrides(cfg: Any, overrides: dict[str, Any], aliases: dict[str, str] | None = None) -> Any:
    """Return a copy of dataclass `cfg` with overrides converted (command-line strings) or checked (Python
    values) by field type, then validated (ranges, the config's own checks)."""
    aliases = aliases or {}
    keys = valid_keys(cfg)
    cfg = _deep_replace(cfg, {})
    for raw_key, value in overrides.items():
        key = aliases.get(raw_key, raw_key)
        if key not in keys:
            raise ConfigError(f"unknown config key {raw_key!r}.{suggest(raw_key, keys + list(aliases))}")
        *path, leaf = key.split(".")
        target = cfg
        for part in path:
            target = getattr(target, part)
        annotation = _field_types(type(target))[leaf]
        setattr(target, leaf, check_type(value, annotation, key))
    validate(cfg)
    return cfg


def _deep_replace(cfg: Any, changes: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kwargs[f.name] = _deep_replace(value, {}) if dataclasses.is_dataclass(value) else value
    kwargs.update(changes)
    return type(cfg)(**kwargs)


def validate(cfg: Any, prefix: str = "") -> None:
    """Check every field's range, then run each (sub)config's own `validate()` if it defines one; both
    raise ConfigError."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, prefix + f.name + ".")
    check_bounds(cfg, prefix)
    check = getattr(cfg, "validate", None)
    if callable(check):
        check()


def with_preset(cfg: Any, preset: dict[str, Any]) -> Any:
    """Apply a preset (typed values, dotted keys allowed) to a config copy."""
    cfg = _deep_replace(cfg, {})
    keys = valid_keys(cfg)
    for key, value in preset.items():
        if key not in keys:
            raise ConfigError(f"preset names unknown key {key!r}.{suggest(key, keys)}")
        *path, leaf = key.split(".")
        target = cfg
        for part in path:
            target = getattr(target, part)
        setattr(target, leaf, value)
    return cfg


def carried(cls: type, source: Any, **overrides: Any) -> Any:
    """A `cls` config holding `source`'s values for the fields both have, then `overrides` (a staged or composite
    recipe's sub-config: e.g. an SFT stage's config from an RL method's)."""
    import dataclasses

    shared = {f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if hasattr(source, f.name)}
    return cls(**{**shared, **overrides})


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    import hashlib

    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def declared_by(cls: type, name: str) -> str:
    """The class in `cls`'s MRO whose own annotations declare field `name` (a method's Config or a
    shared section), for `--help`'s "from" column."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return vars(klass).get("section") or klass.__module__.rsplit(".", 1)[-1]
    return cls.__name__


def field_help(cls: type, preset: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    """(name, default, source, help) for each field: the default under `preset` (if given), where it comes
    from (`preset <name>` when the preset sets it, else the section or method that declares the field),
    and its help from `option(...)`. Range bounds are appended to the help."""
    rows = []
    instance = cls()
    preset = preset or {}
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            inner = {k.split(".", 1)[1]: v for k, v in preset.items() if k.startswith(f.name + ".")}
            for name, default, source, text in field_help(type(value), inner):
                rows.append((f"{f.name}.{name}", default, source, text))
            continue
        source = declared_by(cls, f.name)
        if f.name in preset:
            value, source = preset[f.name], "preset"
        text = f.metadata.get("help", "")
        bounds = f.metadata.get("bounds", {})
        if bounds:
            text += " [" + ", ".join(f"{_BOUND_TEXT[k]} {v:g}" for k, v in bounds.items()) + "]"
        rows.append((f.name, json.dumps(value), source, text))
    return rows
