"""controller-runtime's core, in Python: requests, builder, controllers and the manager.

Owns Request/Result, the builder and its handlers and predicates, controller workers, the
Manager (caches, runnables, leader election, probes, metrics), events and expectations.

May import: ``controller.informers``, ``controller.workqueue``, ``controller.kube``,
``controller.clock``, ``controller.logs``, ``controller.backoff``. Nothing that knows Ensembles.
"""
from controller.runtime.builder import ControllerBuilder
from controller.runtime.cache import ObjectCache
from controller.runtime.controller import Controller
from controller.runtime.events import EventRecorder
from controller.runtime.handlers import Mapper
from controller.runtime.manager import LeaderElectionLost, Manager
from controller.runtime.predicates import Predicate, PredicateFuncs, generation_changed
from controller.runtime.reconcile import Reconciler, Request, Result, TerminalError

__all__ = [
    "Controller",
    "ControllerBuilder",
    "EventRecorder",
    "LeaderElectionLost",
    "Manager",
    "Mapper",
    "ObjectCache",
    "Predicate",
    "PredicateFuncs",
    "Reconciler",
    "Request",
    "Result",
    "TerminalError",
    "generation_changed",
]
