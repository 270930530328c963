"""Explicit registries: one class for every kind (methods, tasks, losses, rewards, samplers, knobs, ...).

An entry is either lazy, `add(name, "package.module:attribute", description)`, so that listing names
never imports the module (and never imports torch; lm-eval's model registry), or an object registered
directly, `@REGISTRY.register(name)` (verl's `@register_policy_loss`). Duplicates are rejected; an
unknown name raises `UnknownName` listing the valid names and the closest ones.

A registered function's keyword-only parameters are its settings: `bind(name, cfg)` reads each from the
config attribute of the same name (or the parameter's default), so choosing a function by name in a
config also says which config fields it needs (`check_config`).

A registry the core declares but upper layers fill (the methods' test-time knobs, the models tasks build)
names an *extension point*, `Registry(kind, extension="rzoo.knobs")`: on its first lookup it calls every
function registered under that entry-point group in the installed packages' metadata (`pyproject.toml`,
`[project.entry-points."rzoo.knobs"]`), each `fill(registry)` adding its entries. So no code path depends on a
set-up call having run first, the core names no upper layer (not even as a string), and another installed
package can extend the zoo the same way.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

_UNLOADED = object()


class UnknownName(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass
class Entry:
    name: str
    target: str | None  # "package.module" or "package.module:attribute"; None for an object registered directly
    description: str
    value: Any = _UNLOADED


class Registry:
    def __init__(self, kind: str, extension: str | None = None):
        self.kind = kind
        self.extension = extension  # an entry-point group whose functions fill this registry on first lookup
        self._entries: dict[str, Entry] = {}
        self._filled = extension is None
        self._filling = False

    # -- filling from an extension point ---------------------------------------------------------
    @property
    def filled(self) -> bool:
        return self._filled

    def _fill(self) -> None:
        if self._filled or self._filling:
            return
        from importlib.metadata import entry_points

        self._filling = True  # a filler reading this registry sees what is there so far
        try:
            for point in sorted(entry_points(group=self.extension), key=lambda p: p.name):
                point.load()(self)
        finally:
            self._filling = False
        self._filled = True

    # -- registering ----------------------------------------------------------------------------
    def _put(self, entry: Entry) -> None:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry

    def add(self, name: str, target: str, description: str = "") -> None:
        """A lazy entry: `target` is imported on first `get`."""
        self._put(Entry(name, target, description))

    def register(self, name: str, description: str = "") -> Callable[[Any], Any]:
        """Decorator (or call with an object) registering `obj` under `name`; returns `obj`."""
        def deco(obj: Any) -> Any:
            self._put(Entry(name, None, description, obj))
            return obj

        return deco

    def remove(self, name: str) -> None:
        """Unregister `name` (tests add entries and take them out again)."""
        self.entry(name)
        del self._entries[name]

    # -- reading --------------------------------------------------------------------------------
    def names(self) -> list[str]:
        self._fill()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def entries_in_order(self) -> list[Entry]:
        """Every entry in registration order."""
        self._fill()
        return list(self._entries.values())

    def __contains__(self, name: str) -> bool:
        self._fill()
        return name in self._entries

    def entry(self, name: str) -> Entry:
        self._fill()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}.{hint} Valid: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> Any:
        """The registered object (a lazy entry's module or attribute, imported now)."""
        entry = self.entry(name)
        if entry.value is _UNLOADED:
            module_name, _, attr = entry.target.partition(":")
            module = importlib.import_module(module_name)
            entry.value = getattr(module, attr) if attr else module
        return entry.value

    load = get

    def values(self) -> list[Any]:
        """Every registered object in registration order (lazy ones imported now)."""
        self._fill()
        return [self.get(name) for name in list(self._entries)]

    # -- registered functions' settings ---------------------------------------------------------
    def settings(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword-only parameters of the function (or class constructor) registered as `name`."""
        params = inspect.signature(self.get(name)).parameters
        return {p.name: p for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def check_config(self, name: str, cfg: Any, provided: tuple[str, ...] = ("step",)) -> None:
        """ConfigError when `name` is not registered or needs a setting `cfg` lacks (a parameter without
        default and no config field)."""
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
        kwargs = {p.name: getattr(cfg, p.name) for p in self.settings(name).values()
                  if p.name not in fixed and hasattr(cfg, p.name)}
        return functools.partial(self.get(name), **kwargs, **fixed)
