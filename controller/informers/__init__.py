"""Informers: list+watch caches with event handlers (client-go tools/cache semantics).

Owns the reflector, the indexed store, the shared informer with its listeners, and the factory.

May import: ``controller.kube``, ``controller.clock``, ``controller.backoff``. Nothing that
knows Ensembles or reconciles.
"""
from controller.informers.factory import SharedInformerFactory
from controller.informers.handlers import ResourceEventHandler, ResourceEventHandlerFuncs
from controller.informers.reflector import Reflector, ReflectorOptions
from controller.informers.shared_informer import SharedInformer
from controller.informers.store import (
    CONTROLLER_UID_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    index_by_controller_uid,
    meta_namespace_key,
)
from controller.informers.transform import default_transform

__all__ = [
    "CONTROLLER_UID_INDEX", "DeletedFinalStateUnknown", "Indexer",
    "Reflector", "ReflectorOptions", "ResourceEventHandler", "ResourceEventHandlerFuncs",
    "SharedInformer", "SharedInformerFactory", "default_transform", "index_by_controller_uid",
    "meta_namespace_key",
]
