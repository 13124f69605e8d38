"""``ensemble-operator status`` and the kubectl plugin ``kubectl ensemble``: the members of
Ensembles as the operator last observed them, once or (``--watch``) on every change.

Reads only Ensembles (get/list/watch), with the user's kubeconfig as kubectl would: ``-n``,
else the context's namespace, else ``default``; ``-A`` for all. ``--watch`` runs an informer
(list, then watch, relisting when the watch expires) and prints again whenever the view changes.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from controller.kube import config
from controller.kube.client import KubeClient
from controller.kube.errors import KubeError, is_not_found
from controller.kube.resources import ENSEMBLES
from controller.statusview.table import EnsembleView, render, view_of

log = logging.getLogger(__name__)

POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CRD_MISSING = ("the API server does not serve Ensembles: install the Ensemble CRD "
               "(helm install, or kubectl apply -f dist/ensemble-operator.yaml)")
CLEAR_SCREEN = "\033[H\033[J"
SYNC_TIMEOUT_SECONDS = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one Ensemble (default: every Ensemble of the namespace)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="Ensembles of every namespace")
    parser.add_argument("-w", "--watch", action="store_true",
                        help="print again on every change, until interrupted")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table",
                        help="table (default) or json (with --watch: one JSON document per line)")
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, "
                        "else the pod's ServiceAccount)")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")
    parser.add_argument("--log-format", choices=("json", "text"), default="text", help="(default text)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning",
                        help="(default warning)")


class StatusError(Exception):
    """Why nothing can be shown (no access, no CRD, no such Ensemble): one line, exit status 1."""


def run(args: argparse.Namespace) -> int:
    try:
        if args.all_namespaces and args.name:
            raise StatusError("a NAME needs one namespace: drop -A (--all-namespaces)")
        namespace = None if args.all_namespaces else (args.namespace or default_namespace(args.kubeconfig,
                                                                                         args.context))
        client = load_client(args.kubeconfig, args.context)
        printer = Printer(args.output, sys.stdout, watching=args.watch, terminal=sys.stdout.isatty())
        if args.watch:
            try:
                watch(client, namespace, args.name, printer.show)
            except KeyboardInterrupt:
                pass
        else:
            printer.show(fetch(client, namespace, args.name), namespace, args.name)
    except (StatusError, KubeError) as err:
        print(f"ensemble-operator status: {err}", file=sys.stderr)
        return 1
    return 0


def kubectl_plugin(argv: Sequence[str] | None = None) -> int:
    """``kubectl ensemble [status] [NAME] [-n NS] [-A] [-w] [-o json]``, installed as ``kubectl-ensemble``."""
    from controller.logs import configure

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="kubectl ensemble",
                                     description="The members of Ensembles, as the operator observed them.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure(args.log_format, args.log_level)
    return run(args)


def load_client(kubeconfig: str | None, context: str | None) -> KubeClient:
    if config.default_kubeconfig_exists(kubeconfig):
        return KubeClient.from_kubeconfig(kubeconfig, context)
    if context:
        raise StatusError(f"--context {context}: no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config)")
    return KubeClient.in_cluster()


def default_namespace(kubeconfig: str | None, context: str | None,
                      pod_namespace_file: Path = POD_NAMESPACE_FILE) -> str:
    """kubectl's choice: the context's namespace, in a pod its own, else ``default``."""
    if config.default_kubeconfig_exists(kubeconfig):
        return config.context_namespace(kubeconfig, context) or "default"
    try:
        return pod_namespace_file.read_text().strip() or "default"
    except OSError:
        return "default"


def fetch(client: KubeClient, namespace: str | None, name: str | None) -> list[EnsembleView]:
    """One read: the named Ensemble, or every Ensemble of the namespace (None: of all)."""
    try:
        if name:
            found = client.get_or_none(ENSEMBLES, name, namespace)
            if found is None:
                raise StatusError(f"Ensemble {namespace}/{name} not found")
            return [view_of(found)]
        items = client.list(ENSEMBLES, namespace).get("items") or []
    except KubeError as err:
        if is_not_found(err):
            raise StatusError(CRD_MISSING) from err
        raise
    return sorted_views(items)


def sorted_views(ensembles: list[dict[str, Any]]) -> list[EnsembleView]:
    return sorted((view_of(e) for e in ensembles), key=lambda view: (view.namespace, view.name))


def watch(client: KubeClient, namespace: str | None, name: str | None,
          show: Callable[[list[EnsembleView], str | None, str | None], None], *,
          stop: threading.Event | None = None,
          until: Callable[[list[EnsembleView]], bool] | None = None) -> list[EnsembleView]:
    """Call ``show`` with the views at start and after every change that alters them, until
    ``stop`` is set or ``until(views)`` holds; returns the last views. Access problems show at
    once (a first list before the informer, which would only retry them)."""
    from controller.informers.handlers import ResourceEventHandlerFuncs
    from controller.informers.shared_informer import SharedInformer

    selector = f"metadata.name={name}" if name else None
    try:
        client.list(ENSEMBLES, namespace, field_selector=selector, limit=1)
    except KubeError as err:
        raise StatusError(CRD_MISSING) if is_not_found(err) else err
    changes = Changes(stop)
    informer = SharedInformer(client, ENSEMBLES, namespace=namespace, field_selector=selector)
    informer.add_event_handler(ResourceEventHandlerFuncs(add=lambda *_: changes.mark(),
                                                         update=lambda *_: changes.mark(),
                                                         delete=lambda *_: changes.mark()))
    informer.start()
    views: list[EnsembleView] = []
    shown: list[EnsembleView] | None = None
    try:
        if not informer.wait_for_sync(SYNC_TIMEOUT_SECONDS):
            raise StatusError(f"no list of Ensembles within {SYNC_TIMEOUT_SECONDS:.0f} s")
        changes.mark()
        while changes.next():
            views = sorted_views(informer.get_indexer().list())
            if views != shown:
                show(views, namespace, name)
                shown = views
            if until is not None and until(views):
                break
    finally:
        informer.stop()
    return views


class Changes:
    """Set by informer handlers, waited for by the printing loop; ``stop`` ends the wait."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._condition = threading.Condition()
        self._dirty = False
        self._stop = stop or threading.Event()
        if stop is not None:
            threading.Thread(target=self._wake_on_stop, name="status-watch-stop", daemon=True).start()

    def _wake_on_stop(self) -> None:
        self._stop.wait()
        self.mark()

    def mark(self) -> None:
        with self._condition:
            self._dirty = True
            self._condition.notify_all()

    def next(self) -> bool:
        """Wait for a change; False once stopped."""
        with self._condition:
            while not self._dirty:
                self._condition.wait()
            self._dirty = False
        return not self._stop.is_set()


class Printer:
    """Writes views as a table or as JSON. Watching, a terminal is cleared before each table
    (a live view, as the demo shows it), other output gets each table after a blank line and
    each JSON document on one line."""

    def __init__(self, output: str, stream: Any, *, watching: bool = False, terminal: bool = False) -> None:
        self.output, self.stream = output, stream
        self.watching, self.terminal = watching, terminal
        self.printed = 0

    def show(self, views: list[EnsembleView], namespace: str | None, name: str | None) -> None:
        if self.output == "json":
            text = json.dumps({"ensembles": [view.to_json() for view in views]},
                              indent=None if self.watching else 2)
        elif views:
            text = render(views)
        elif name:
            text = f"Ensemble {namespace}/{name}: not found"
        else:
            text = f"No Ensembles found in {f'namespace {namespace}' if namespace else 'any namespace'}."
        redraw = self.watching and self.terminal and self.output == "table"
        prefix = CLEAR_SCREEN if redraw else ("\n" if self.printed and self.output == "table" else "")
        self.stream.write(prefix + text + "\n")
        self.stream.flush()
        self.printed += 1
