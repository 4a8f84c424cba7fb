"""Registries: one per family (encoder, fusion, objective, head).

A new method is one file and one decorator::

    @FUSIONS.register("concat")
    class ConcatFusion(Fusion): ...

after which ``FUSIONS.build("concat", dims={...}, out_dim=64)`` works from Python, from a config
file and from the CLI with no other edit. Sub-modules of the family packages are imported on first
use (see :func:`Registry._ensure_loaded`), so dropping a file into ``mmfuse/fusion/`` is enough.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mmfuse.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> constructor table with helpful errors.

    Args:
        family: human name of the family ("fusion", "encoder", ...), used in messages.
        package: dotted package whose sub-modules hold the registered classes; they are imported
            lazily the first time the registry is read.
    """

    def __init__(self, family: str, package: str | None = None) -> None:
        self.family = family
        self.package = package
        self._entries: dict[str, Callable[..., T]] = {}
        self._loaded = package is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers a class or factory under ``name``."""

        def deco(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.family} name {name!r} is registered twice")
            self._entries[name] = obj
            obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return deco

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)  # type: ignore[arg-type]
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str) -> Callable[..., T]:
        """The constructor registered as ``name``; unknown names list the valid ones."""
        self._ensure_loaded()
        if name not in self._entries:
            valid = sorted(self._entries)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.family} {name!r}.{hint} Valid {self.family} names: {', '.join(valid)}."
            )
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> T:
        """Construct ``name`` with ``kwargs``; a wrong keyword names the option and the method."""
        ctor = self.get(name)
        try:
            return ctor(**kwargs)
        except TypeError as exc:
            if "unexpected keyword" in str(exc) or "missing" in str(exc):
                raise ConfigError(f"Cannot build {self.family} {name!r}: {exc}.") from exc
            raise

    def list(self) -> list[str]:
        """Sorted registered names."""
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.list()})"


ENCODERS: Registry = Registry("encoder", "mmfuse.encoders")
FUSIONS: Registry = Registry("fusion", "mmfuse.fusion")
OBJECTIVES: Registry = Registry("objective", "mmfuse.objectives")
HEADS: Registry = Registry("head", "mmfuse.heads")
