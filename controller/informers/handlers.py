"""What informers call: the handler protocol and an adapter from plain callables."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from controller.informers.store import DeletedFinalStateUnknown


class ResourceEventHandler(Protocol):
    def on_add(self, obj: dict[str, Any], is_in_initial_list: bool) -> None: ...

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None: ...

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None: ...


@dataclass(frozen=True)
class ResourceEventHandlerFuncs:
    """A handler from callables; a missing callable ignores that kind of event."""

    add: Callable[[dict[str, Any], bool], None] | None = None
    update: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    delete: Callable[[dict[str, Any] | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: dict[str, Any], is_in_initial_list: bool) -> None:
        if self.add:
            self.add(obj, is_in_initial_list)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if self.update:
            self.update(old, new)

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        if self.delete:
            self.delete(obj)
