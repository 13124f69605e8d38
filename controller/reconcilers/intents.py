"""``status.memberActions`` written on its own, guarded by the Ensemble's resourceVersion.

Algorithm actions are recorded here before they act. When anyone wrote the Ensemble since
the copy a decision was made from (another operator that still believes it leads, the
ensemble service's budget ledger, our own last write not cached yet), the API server
refuses the write: if the records are still those our copy held, it is sent again on the
live object; if someone else changed them, the caller takes theirs and decides again. So
two deciders never both record, and so both carry out, the same refill or delete.

A field manager of their own keeps the records out of the main status apply, which is
not guarded: an operator with a stale cache writing its status can never erase them.
"""
from __future__ import annotations

from typing import Protocol

from controller.kube.errors import ApiError, is_conflict
from controller.kube.resources import ENSEMBLES, Resource
from controller.reconcilers.action_records import STATUS_FIELD, ActionRecords, records_from_status

RECORDS_FIELD_MANAGER = "ensemble-operator-actions"
# Decisions made again after someone else changed the records, before the reconcile gives up.
INTENT_ATTEMPTS = 3
# Writes of unchanged records on a newer resourceVersion before the reconcile gives up.
WRITE_ATTEMPTS = 3


class Client(Protocol):
    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict: ...

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict: ...


class RecordsChanged(Exception):
    """Someone else wrote ``status.memberActions`` since our copy; ``live`` is the Ensemble now."""

    def __init__(self, live: dict) -> None:
        super().__init__("status.memberActions changed by another writer")
        self.live = live


def stored_records(ensemble: dict) -> list:
    return (ensemble.get("status") or {}).get(STATUS_FIELD) or []


def owns_records(live: dict) -> bool:
    """Whether our records manager holds ``status.memberActions`` (``live`` read with its
    managedFields). Records written before it existed belong to the main status manager,
    whose apply no longer names them: they would be removed."""
    for entry in live["metadata"].get("managedFields") or []:
        status = ((entry.get("fieldsV1") or {}).get("f:status") or {})
        if entry.get("manager") == RECORDS_FIELD_MANAGER and f"f:{STATUS_FIELD}" in status:
            return True
    return False


def store_records(client: Client, ensemble: dict, member_actions: list[dict], *, force: bool = False,
                  base: list[dict] | None = None) -> dict:
    """Write ``member_actions`` unless ``ensemble`` holds them already (``force``: even then);
    the Ensemble after it.

    Raises RecordsChanged when the live records differ from ``base``: the records this writer
    last stored, when it knows them (a cache may lag behind its own writes), else those of
    ``ensemble``.
    """
    if base is None:
        base = stored_records(ensemble)
    for attempt in range(WRITE_ATTEMPTS):
        if member_actions == stored_records(ensemble) and not force:
            return ensemble
        try:
            return client.apply(ENSEMBLES, _body(ensemble, member_actions), field_manager=RECORDS_FIELD_MANAGER,
                                force=True, subresource="status")
        except Exception as error:
            if not is_conflict(error) or attempt == WRITE_ATTEMPTS - 1:
                raise
        meta = ensemble["metadata"]
        live = client.get(ENSEMBLES, meta["name"], meta["namespace"])
        if live["metadata"].get("uid") != meta.get("uid"):
            raise ApiError(409, "Conflict", f"Ensemble {meta['namespace']}/{meta['name']} was replaced")
        if stored_records(live) != base:
            raise RecordsChanged(live)
        ensemble = live
    raise AssertionError("unreachable")


def _body(ensemble: dict, member_actions: list[dict]) -> dict:
    meta = ensemble["metadata"]
    metadata = {"name": meta["name"], "namespace": meta["namespace"]}
    if meta.get("resourceVersion"):
        metadata["resourceVersion"] = meta["resourceVersion"]
    # No records left: the field goes (server-side apply removes what its manager stops naming).
    status = {STATUS_FIELD: member_actions} if member_actions else {}
    return {"apiVersion": ENSEMBLES.api_version, "kind": ENSEMBLES.kind, "metadata": metadata, "status": status}


def adopt_records(live: dict, records: dict[str, ActionRecords], members: set[str]) -> None:
    """Replace ``records`` (in place) with the live Ensemble's, keeping our exact times where
    the status's whole seconds agree with them."""
    fresh = records_from_status(live.get("status"))
    for name, adopted in fresh.items():
        if name in records:
            adopted.adopt_times(records[name])
    records.clear()
    records.update({name: adopted for name, adopted in fresh.items() if name in members})
