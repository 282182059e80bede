"""A tiny name -> object registry (habitat-lab style) for prompt formats, measures, policies, tasks and
backends, and the plugin modules that add to them."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}") from None

    def keys(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list[T]:
        """The registered objects in registration order."""
        return list(self._items.values())

    def __contains__(self, name: str) -> bool:
        return name in self._items


#: Group of installed packages' entry points naming plugin modules (``navtune.plugins``).
PLUGIN_GROUP = "navtune.plugins"
_PLUGINS: dict[str, str | None] = {}  # module name -> the sys.path folder it was imported from


def _import_root(name: str) -> str | None:
    file = getattr(sys.modules[name], "__file__", None)
    if file is None:
        return None
    root = Path(file).parent
    for _ in range(name.count(".") + (Path(file).name == "__init__.py")):
        root = root.parent
    return str(root)


def import_plugins(modules: Iterable[str | tuple[str, str | None]] = ()) -> tuple[tuple[str, str | None], ...]:
    """Import plugin modules (each registers its prompt formats / backends / measures when imported) and
    remember them with the folder they came from, so that worker processes import the same ones (pass them
    this function's result). Returns every plugin imported so far."""
    for m in modules:
        name, root = (m, None) if isinstance(m, str) else m
        if root is not None and root not in sys.path:
            sys.path.append(root)
        importlib.import_module(name)
        _PLUGINS.setdefault(name, _import_root(name))
    return tuple(_PLUGINS.items())


def installed_plugins() -> list[str]:
    """Module names that installed packages declare under the ``navtune.plugins`` entry-point group."""
    from importlib.metadata import entry_points

    return [ep.value.partition(":")[0] for ep in entry_points(group=PLUGIN_GROUP)]
