"""The Ensemble API, ensemble.flux-framework.org/v1alpha1."""
from api.v1alpha1.crd import crd
from api.v1alpha1.errors import FieldError, InvalidObjectError
from api.v1alpha1.types import (AlgorithmSpec, Condition, Ensemble, EnsembleSpec, EnsembleStatus, LeadBroker,
                                Member, MemberStatus, Sidecar, StatusSummary)
from api.v1alpha1.validation import spec_warnings, validate

__all__ = ["AlgorithmSpec", "Condition", "Ensemble", "EnsembleSpec", "EnsembleStatus", "FieldError",
           "InvalidObjectError", "LeadBroker", "Member", "MemberStatus", "Sidecar", "StatusSummary", "crd",
           "spec_warnings", "validate"]
