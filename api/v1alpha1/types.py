"""The Ensemble API (ensemble.flux-framework.org/v1alpha1) as dataclasses.

These classes are the one source of the API: the CRD schema (``crd.py``), the
decoder's defaults (``codec.py``) and docs/api-reference.md are generated from
them. Wire names are the Python names in lowerCamelCase.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from api.v1alpha1.codec import decode, encode
from api.v1alpha1.jsoncopy import copy_json
from api.v1alpha1.markers import CelRule, api_field
from api.v1alpha1.service_mode import SERVICE_MODES

GROUP = "ensemble.flux-framework.org"
VERSION = "v1alpha1"
KIND = "Ensemble"
PLURAL = "ensembles"
API_VERSION = f"{GROUP}/{VERSION}"

DEFAULT_SIDECAR_IMAGE = "ghcr.io/converged-computing/ensemble-python:latest"
DEFAULT_SIDECAR_PORT = "50051"
DEFAULT_SIDECAR_WORKERS = 10
DEFAULT_HEARTBEAT_SECONDS = 10
DEFAULT_MEMBER_SIZE = 1
DEFAULT_ENSEMBLE_PYTHON = "0.0.16"   # also ensemble_yaml.RULES_VERSION: the release whose rules are checked
LATEST = "latest"
ENSEMBLE_PYTHON_PATTERN = r"^(latest|[0-9]+(\.[0-9]+)*([.+!_-]?[A-Za-z0-9]+)*)$"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# Bounds on what one tenant's Ensemble may ask the operator to hold, build and check.
MAX_MEMBERS = 100                 # MiniClusters per Ensemble (each polled, each a Role resourceName)
MAX_ENSEMBLE_YAML = 64 * 1024     # characters of one member's ensemble.yaml (also a ConfigMap)
MAX_IMAGE = 1024                  # characters of an image reference
MAX_OPTIONS = 64                  # keys of spec.algorithm.options
MAX_CONDITIONS = 16

# A size of 0 means "unset" upstream (the Go zero value), so the rules read an
# effective size: size when positive, else the default of 1.
_EFFECTIVE_SIZE = "((has(self.size) && self.size > 0) ? self.size : 1)"
_HAS_MAX = "(has(self.maxSize) && self.maxSize > 0)"


# ---- the embedded MiniCluster: only the fields this operator relies on are typed ----

@dataclass
class ContainerShape:
    """A MiniCluster container. Only `image` is checked here; the Flux Operator validates the rest."""

    API_OPEN: ClassVar[bool] = True

    image: str = api_field("Container image that runs the member's jobs (Flux is added to it on the fly).",
                           required=True, min_length=1, max_length=MAX_IMAGE)


@dataclass
class MiniClusterSpecShape:
    """The MiniCluster spec (flux-framework.org/v1alpha2), as the Flux Operator documents it."""

    API_OPEN: ClassVar[bool] = True
    API_RULES: ClassVar[tuple[CelRule, ...]] = (
        CelRule(f"!has(self.minSize) || !{_HAS_MAX} || self.minSize <= self.maxSize",
                "minSize must not exceed maxSize", ".minSize"),
        CelRule(f"!has(self.minSize) || self.minSize <= {_EFFECTIVE_SIZE}",
                "size must be at least minSize", ".size"),
        CelRule(f"!{_HAS_MAX} || {_EFFECTIVE_SIZE} <= self.maxSize",
                "size must not exceed maxSize", ".size"),
    )

    containers: list[ContainerShape] = api_field(
        "Containers of each pod; the first one runs Flux and the member's ensemble.",
        default_factory=list, required=True, min_items=1, max_items=32)
    size: int = api_field("Number of pods (Flux brokers) the MiniCluster starts with; 0 means 1.",
                          default=DEFAULT_MEMBER_SIZE, minimum=0)
    min_size: int | None = api_field("Smallest size a shrink may reach. Unset: 1.", default=None, minimum=0)
    max_size: int | None = api_field("Largest size a grow may reach. Unset or 0: the initial size.",
                                     default=None, minimum=0)


@dataclass
class MiniClusterShape:
    """An embedded MiniCluster; the operator names it and wires it to the ensemble service."""

    API_OPEN: ClassVar[bool] = True

    spec: MiniClusterSpecShape = api_field("The MiniCluster spec, as the Flux Operator documents it.",
                                           required=True)


# ---- spec ----

@dataclass
class Sidecar:
    """Settings of the ensemble gRPC service Deployment (named "sidecar" upstream, kept for compatibility)."""

    image: str = api_field("Image of the ensemble service. In mode operator, upstream's service images "
                           "(ensemble-python, ensemble-operator-api) are replaced by the operator's image, which "
                           "runs this service; in mode upstream this image runs `ensemble-server start`. Any "
                           "other image selects mode upstream unless `mode` says otherwise.",
                           default=DEFAULT_SIDECAR_IMAGE, max_length=MAX_IMAGE)
    mode: str | None = api_field(
        "Which ensemble service runs: `operator` (this operator's: grow/shrink within bounds, the fair share "
        "of spec.budget) or `upstream` (`image` run with upstream's command `ensemble-server start "
        "--kubernetes --host 0.0.0.0 --port <port> --workers <workers>`, as upstream's operator creates it). "
        "Unset: operator when `image` is unset or one of upstream's service images, else upstream. "
        "status.serviceMode shows the mode in effect.", default=None, enum=SERVICE_MODES)
    image_pull_policy: str | None = api_field("Pull policy of the service image.", default=None,
                                              enum=PULL_POLICIES)
    port: str = api_field("Port the service listens on, as a string (upstream type).",
                          default=DEFAULT_SIDECAR_PORT, pattern=r"^[0-9]{1,5}$", max_length=5,
                          rules=(CelRule("int(self) >= 1 && int(self) <= 65535",
                                         "port must be between 1 and 65535"),))
    workers: int = api_field("Worker threads of the gRPC server.", default=DEFAULT_SIDECAR_WORKERS,
                             minimum=1)
    pull_always: bool | None = api_field(
        "Deprecated, kept so upstream examples apply unchanged under strict field validation: "
        "true means imagePullPolicy Always when imagePullPolicy is unset.", default=None)


@dataclass
class AlgorithmSpec:
    """An operator-side algorithm that reads members' status and acts (scale, terminate, refill)."""

    name: str = api_field("Registered algorithm name.", required=True, min_length=1, max_length=63)
    options: dict[str, Any] = api_field("Algorithm options; the named algorithm documents its keys.",
                                        default_factory=dict, max_properties=MAX_OPTIONS)


@dataclass
class Member:
    """One ensemble member: a MiniCluster whose lead broker runs ensemble-python on `ensemble`."""

    minicluster: dict[str, Any] = api_field("The member's MiniCluster (`{spec: {...}}`).",
                                            required=True, shape=MiniClusterShape)
    ensemble: str = api_field("The member's ensemble.yaml: jobs, rules and logging for ensemble-python.",
                              required=True, min_length=1, max_length=MAX_ENSEMBLE_YAML)
    branch: str | None = api_field("Install ensemble-python from this git branch instead of PyPI.",
                                   default=None, max_length=255)
    ensemble_python: str | None = api_field(
        "The ensemble-python release the lead broker installs from PyPI: a version (e.g. 0.0.16) or "
        "`latest` (unpinned, as upstream installs it). Unset: " + DEFAULT_ENSEMBLE_PYTHON + ", the release "
        "whose loading rules the operator checks ensemble.yaml against; for any other, and for `branch`, "
        "the same checks run and a SpecWarnings warning says its rules are not known. Not with `branch`.",
        default=None, max_length=64, pattern=ENSEMBLE_PYTHON_PATTERN)

    def __post_init__(self) -> None:
        """Apply the upstream size defaults to a private copy of the MiniCluster."""
        self.minicluster = copy_json(self.minicluster)
        if not self.branch:
            self.branch = None
        if not self.ensemble_python:
            self.ensemble_python = None
        spec = self.minicluster.setdefault("spec", {})
        if not spec.get("size"):
            spec["size"] = DEFAULT_MEMBER_SIZE
        if not spec.get("maxSize"):
            spec["maxSize"] = spec["size"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.minicluster["spec"]

    @property
    def size(self) -> int:
        return int(self.spec["size"])

    @property
    def min_size(self) -> int:
        """The floor for shrinking: upstream leaves it unset, and a MiniCluster needs one pod."""
        return int(self.spec.get("minSize") or 1)

    @property
    def max_size(self) -> int:
        return int(self.spec["maxSize"])

    @property
    def containers(self) -> list[dict[str, Any]]:
        return self.spec.get("containers") or []


@dataclass
class EnsembleSpec:
    """The desired ensemble: its members, the shared gRPC service, and optional operator-side policy."""

    members: list[Member] = api_field("The ensemble's members, each one MiniCluster.",
                                      default_factory=list, required=True, min_items=1,
                                      max_items=MAX_MEMBERS)
    sidecar: Sidecar = api_field("The ensemble gRPC service the members call to grow and shrink.",
                                 default_factory=Sidecar, schema_default={})
    algorithm: AlgorithmSpec | None = api_field("Operator-side algorithm; unset means none runs.",
                                                default=None)
    heartbeat: int = api_field("Seconds between status polls of each member's lead broker.",
                               default=DEFAULT_HEARTBEAT_SECONDS, minimum=1)
    budget: int | None = api_field("Total nodes across all members, shared fairly when members grow.",
                                   default=None, minimum=1)
    status_sidecar: bool = api_field(
        "Run the member status sidecar (the operator's endpoint beside each lead broker, which it polls for "
        "queue and node counts). false: no sidecar, so no status polls, no lastPoll and no spec.algorithm "
        "(status.memberPolling says Disabled); members run as upstream's do.", default=True)
    network_policy: bool = api_field(
        "Generate NetworkPolicies: the ensemble service is reached only from this Ensemble's member pods "
        "and the operator, members' status port only from the operator; false leaves ingress as the "
        "namespace has it.", default=True)


# ---- status ----

@dataclass
class Condition:
    """A standard Kubernetes condition (metav1.Condition's fields)."""

    type: str = api_field("Condition type, e.g. Ready or Valid.", required=True, min_length=1,
                          max_length=316)
    status: str = api_field("True, False or Unknown.", required=True, enum=("True", "False", "Unknown"))
    reason: str | None = api_field("CamelCase reason for the last transition.", default=None)
    message: str | None = api_field("Human-readable detail.", default=None)
    last_transition_time: str | None = api_field("When status last changed (RFC 3339).", default=None,
                                                 format="date-time")
    observed_generation: int | None = api_field("metadata.generation the condition was computed from.",
                                                default=None, minimum=0)


@dataclass
class LeadBroker:
    """The pod at index 0 of a MiniCluster, where ensemble-python runs."""

    pod: str | None = api_field("Pod name.", default=None)
    ip: str | None = api_field("Pod IP.", default=None)


@dataclass
class MemberStatus:
    """What the operator last observed of one member."""

    name: str = api_field("Member name, `<ensemble>-<index>` (also its ConfigMap).", required=True)
    minicluster: str | None = api_field("Name of the member's MiniCluster.", default=None)
    phase: str | None = api_field("Member phase: Pending, Running, Completed or Failed.",
                                  default=None)
    desired_size: int | None = api_field(
        "spec.size of the MiniCluster, unless the Flux Operator refuses it (0, outside minSize..maxSize, "
        "above its status.maximumSize): then the size it last gave the Job.", default=None, minimum=0)
    current_size: int | None = api_field("Pods of the MiniCluster that are running.", default=None, minimum=0)
    min_size: int | None = api_field("Effective minimum size.", default=None, minimum=0)
    max_size: int | None = api_field("Effective maximum size: maxSize, capped by the MiniCluster's "
                                     "status.maximumSize (the Flux Operator grows no further).",
                                     default=None, minimum=0)
    lead_broker: LeadBroker | None = api_field("The lead broker pod, once it exists.", default=None)
    last_poll_time: str | None = api_field("When the lead broker was last polled (RFC 3339).",
                                           default=None, format="date-time")
    last_poll: dict[str, Any] | None = api_field("The lead broker's last status report (nodes, queue, ...).",
                                                 default=None)
    last_poll_error: str | None = api_field(
        "Why the latest status poll failed, while it fails (the status sidecar's own reply when it answers, "
        "e.g. that it cannot load Flux's Python bindings).", default=None, max_length=512)


@dataclass
class StatusSummary:
    """Counts shown by `kubectl get ensembles`."""

    members: int = api_field("Number of members.", default=0, minimum=0)
    ready: int = api_field("Members running or completed (as the MembersReady condition counts them).",
                           default=0, minimum=0)


@dataclass
class BudgetGrant:
    """A grow granted within spec.budget whose MiniCluster patch may not have landed yet.

    Every decider (the ensemble service, the operator's scale algorithm) writes its grant here
    before patching the MiniCluster, guarded by the Ensemble's resourceVersion, and counts the
    others' grants: that is what keeps the budget across processes.
    """

    minicluster: str = api_field("The member's MiniCluster.", required=True, min_length=1)
    size: int = api_field("The size granted.", required=True, minimum=1)
    resource_version: str = api_field(
        "The MiniCluster's resourceVersion the grant was decided from: once the MiniCluster has changed, "
        "the grant either shows in its spec.size or can no longer be applied, and stops counting.",
        required=True, min_length=1)
    expires_at: str = api_field("When the grant stops counting even if it was never applied (RFC 3339).",
                                required=True, format="date-time")


@dataclass
class ServiceAction:
    """The last grow or shrink the ensemble service served for one member (its rules asked for it).

    Written by the service (field manager ensemble-service), one entry per member, so
    `ensemble-operator status` can show resizes that no operator algorithm made.
    """

    name: str = api_field("The member's MiniCluster.", required=True, min_length=1)
    kind: str = api_field("The action served.", required=True, enum=("grow", "shrink"))
    from_size: int = api_field("spec.size before the action.", required=True, minimum=0, json_name="from")
    to_size: int = api_field("spec.size the action set.", required=True, minimum=0, json_name="to")
    time: str = api_field("When the service resized the MiniCluster (RFC 3339).", required=True,
                          format="date-time")
    grows: int = api_field("Grows the service has served for this member.", default=0, minimum=0)
    shrinks: int = api_field("Shrinks the service has served for this member.", default=0, minimum=0)


@dataclass
class EnsembleStatus:
    """The observed state of an Ensemble, written by the operator through the status subresource."""

    API_OPEN: ClassVar[bool] = True

    observed_generation: int | None = api_field("metadata.generation this status describes.", default=None,
                                                minimum=0)
    phase: str | None = api_field("Ensemble phase: Pending, Running, Completed, Failed or Invalid.",
                                  default=None)
    conditions: list[Condition] = api_field(
        "Standard conditions: Ready, ServiceReady, MembersReady, MembersReachable, InvalidSpec, "
        "SpecWarnings (what a valid spec says that will not do what it seems).", default_factory=list,
        list_map_keys=("type",), max_items=MAX_CONDITIONS)
    members: list[MemberStatus] = api_field("Per-member status, in spec order.", default_factory=list,
                                            list_map_keys=("name",), max_items=MAX_MEMBERS)
    summary: StatusSummary | None = api_field("Member counts for printer columns.", default=None)
    member_polling: str | None = api_field(
        "Enabled: the operator polls each lead broker's status sidecar (lastPoll, spec.algorithm). Disabled: "
        "spec.statusSidecar is false, so members have no sidecar and neither polls nor spec.algorithm run.",
        default=None, enum=("Enabled", "Disabled"))
    service_mode: str | None = api_field("The ensemble service mode in effect (spec.sidecar.mode, or what the "
                                         "image selects): operator or upstream.", default=None,
                                         enum=SERVICE_MODES)
    budget_grants: list[BudgetGrant] = api_field(
        "The spec.budget ledger, written by the deciders that grow members (not by the reconciler).",
        default_factory=list, list_map_keys=("minicluster",), max_items=MAX_MEMBERS)
    service_actions: list[ServiceAction] = api_field(
        "Per member, the last grow or shrink the ensemble service served (its rules asked for it), written by "
        "the service (not by the reconciler).", default_factory=list, list_map_keys=("name",),
        max_items=MAX_MEMBERS)


@dataclass
class Ensemble:
    """An ensemble of HPC jobs run by ensemble-python in Flux MiniClusters."""

    spec: EnsembleSpec = api_field("Desired state.", required=True)
    metadata: dict[str, Any] = api_field("Standard object metadata.", default_factory=dict)
    status: EnsembleStatus = api_field("Observed state.", default_factory=EnsembleStatus)

    @property
    def name(self) -> str:
        return self.metadata.get("name", "")

    @property
    def namespace(self) -> str:
        return self.metadata.get("namespace", "")

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Ensemble:
        """Decode an Ensemble object, applying defaults; raises InvalidObjectError naming each bad field."""
        return decode(cls, obj, "")

    def to_dict(self) -> dict[str, Any]:
        """The object as the API server stores it, defaults included."""
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": copy_json(self.metadata),
                "spec": encode(self.spec), "status": encode(self.status)}
