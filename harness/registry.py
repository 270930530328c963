"""Explicit, lazy registries (the shape of lm-eval's model registry).

An entry maps a name to `"module:attribute"` plus a one-line description, so listing names never
imports the module (and never imports torch). Duplicates are rejected; an unknown name raises
`UnknownName` listing the valid names and the closest ones.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable


class UnknownName(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module" or "package.module:attribute"
    description: str


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, description: str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, target, description)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}.{hint} Valid: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def remove(self, name: str) -> None:
        """Unregister `name` (tests add entries and take them out again)."""
        self.entry(name)
        del self._entries[name]

    def load(self, name: str) -> Any:
        """Import and return the registered module (or its attribute)."""
        module_name, _, attr = self.entry(name).target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module


class FunctionRegistry:
    """Registered pure functions (verl's `@register_policy_loss`): a decorator that rejects duplicates.

    A registered function's keyword-only parameters are its settings: `bind(name, cfg)` reads each
    from the config attribute of the same name (or the parameter's default), so choosing a function by
    name in a config also says which config fields it needs (`check_config`)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._fns: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[Callable], Callable]:
        def deco(fn: Callable) -> Callable:
            if name in self._fns:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._fns[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable:
        if name not in self._fns:
            close = difflib.get_close_matches(name, list(self._fns), n=3, cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}.{hint} Valid: {', '.join(sorted(self._fns))}")
        return self._fns[name]

    def names(self) -> list[str]:
        return sorted(self._fns)

    def __contains__(self, name: str) -> bool:
        return name in self._fns

    def remove(self, name: str) -> None:
        self.get(name)
        del self._fns[name]

    def settings(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword-only parameters of the function (or class constructor) registered as `name`."""
        params = inspect.signature(self.get(name)).parameters
        return {p.name: p for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def check_config(self, name: str, cfg: Any, provided: tuple[str, ...] = ("step",)) -> None:
        """Raise ValueError-derived UnknownName / ConfigError-like messages when `name` is not registered
        or needs a setting `cfg` lacks (a parameter without default and no config field)."""
        from .config import ConfigError

        try:
            settings = self.settings(name)
        except UnknownName as e:
            raise ConfigError(str(e)) from None
        for p in settings.values():
            if p.name not in provided and not hasattr(cfg, p.name) and p.default is inspect.Parameter.empty:
                raise ConfigError(f"{self.kind} {name!r} needs a config field {p.name!r}, which "
                                  f"{type(cfg).__module__}.{type(cfg).__name__} does not have")

    def bind(self, name: str, cfg: Any, **fixed: Any) -> Callable:
        """The function with its settings read from `cfg` (and `fixed` ones given here)."""
        kwargs = {}
        for p in self.settings(name).values():
            if p.name in fixed:
                continue
            if hasattr(cfg, p.name):
                kwargs[p.name] = getattr(cfg, p.name)
        return functools.partial(self.get(name), **kwargs, **fixed)
