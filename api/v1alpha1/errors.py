"""Field-level errors, shaped like the API server's (a field path and a cause)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, e.g. ``spec.members[1].ensemble.rules[2].when``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidObjectError(ValueError):
    """An object that cannot be decoded; carries every field error found."""

    def __init__(self, kind: str, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(f"invalid {kind}: " + "; ".join(str(error) for error in self.errors))
