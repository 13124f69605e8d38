"""Names of what an Ensemble owns: one rule, read by the reconciler that creates the
objects, the Role that grants them by name, and the ensemble service that reads them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.v1alpha1.markers import CelRule


@dataclass(frozen=True)
class CreateOnlyRule(CelRule):
    """A rule checked when the object is created, not on its updates (``oldSelf`` is then absent).

    A CEL rule on the root runs on every write, status included, and ratcheting never spares the
    root: an Ensemble stored before the rule could not get even its InvalidSpec status."""

    def to_schema(self) -> dict[str, Any]:
        return {**super().to_schema(), "rule": f"oldSelf.hasValue() || ({self.rule})", "optionalOldSelf": True}


# The ensemble service's Service is `<e>-grpc` and the members' headless Service `<e>`: a
# Service name is a DNS label (no dots, at most 63 characters), so `<e>` is at most 58.
GRPC_SERVICE_SUFFIX = "-grpc"
MAX_ENSEMBLE_NAME_LENGTH = 63 - len(GRPC_SERVICE_SUFFIX)
NAME_RULES = (  # names are immutable: checking them at create is enough
    CreateOnlyRule(f"self.metadata.name.size() <= {MAX_ENSEMBLE_NAME_LENGTH}",
                   f"metadata.name must be at most {MAX_ENSEMBLE_NAME_LENGTH} characters: the ensemble "
                   f"service's Service is `<name>{GRPC_SERVICE_SUFFIX}`, and a Service name is at most 63"),
    CreateOnlyRule("!self.metadata.name.contains('.')",
                   "metadata.name must not contain dots: the operator names Services after the Ensemble"),
)


def member_object_name(ensemble_name: str, index: int) -> str:
    """``<e>-<i>``: member ``i``'s MiniCluster and ConfigMap."""
    return f"{ensemble_name}-{index}"


def ensemble_name_errors(name: str) -> list[str]:
    """What ``NAME_RULES`` refuse in ``name``, for objects stored before the CRD had them."""
    errors = []
    if len(name) > MAX_ENSEMBLE_NAME_LENGTH:
        errors.append(f"must be at most {MAX_ENSEMBLE_NAME_LENGTH} characters, got {len(name)}: the "
                      f"ensemble service's Service is named <name>{GRPC_SERVICE_SUFFIX}, and a Service "
                      "name is at most 63")
    if "." in name:
        errors.append("must not contain dots: the operator names Services after the Ensemble")
    return errors
