"""Registries: a choice among variants (a teacher target, a long view, ...) is one class under its
name, never a string compared in several places."""

from __future__ import annotations

__all__ = ["Registry"]


class Registry(dict):
    """name -> class, filled by the ``register`` decorator from each class's ``name``; iterating
    gives the names in the order of registration."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, cls: type) -> type:
        name = getattr(cls, "name", "")
        if not name or name in self:
            raise ValueError(f"{self.kind} class {cls.__name__}: name {name!r} is empty or taken")
        self[name] = cls
        return cls
