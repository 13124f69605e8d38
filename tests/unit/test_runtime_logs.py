"""JSON logs: one object per line with the reconcile context the controller sets."""
from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.logs import JsonFormatter, TextFormatter, configure, log_context
from controller.runtime.controller import Controller, new_reconcile_id
from controller.runtime.metrics import ControllerMetrics
from controller.runtime.reconcile import Request, Result
from controller.workqueue import new_rate_limiting_queue


@pytest.fixture
def lines():
    """Capture records from the 'test' and runtime loggers as formatted JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("test"), logging.getLogger("controller.runtime.controller")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_line_has_time_level_logger_msg_and_extra_fields(lines):
    logging.getLogger("test").warning("grew %s", "e-0", extra={"size": 3})
    [entry] = lines()
    assert entry["level"] == "warning" and entry["logger"] == "test"
    assert entry["msg"] == "grew e-0" and entry["size"] == 3
    assert entry["time"].endswith("+00:00")


def test_context_fields_apply_inside_the_block_only_and_nest(lines):
    log = logging.getLogger("test")
    with log_context(controller="ensemble"):
        with log_context(ensemble="ns/e"):
            log.info("inner")
        log.info("outer")
    log.info("after")
    inner, outer, after = lines()
    assert (inner["controller"], inner["ensemble"]) == ("ensemble", "ns/e")
    assert outer["controller"] == "ensemble" and "ensemble" not in outer
    assert "controller" not in after


def test_exceptions_carry_error_and_stacktrace(lines):
    try:
        raise ValueError("bad spec")
    except ValueError:
        logging.getLogger("test").exception("reconcile failed")
    [entry] = lines()
    assert entry["error"] == "bad spec"
    assert "Traceback" in entry["stacktrace"] and "ValueError" in entry["stacktrace"]


def test_reconcile_logs_carry_controller_object_and_reconcile_id(lines):
    ids = iter(["id-1", "id-2"])
    reconcile_log = logging.getLogger("test")

    class Logs:
        def reconcile(self, request: Request) -> Result:
            reconcile_log.info("reconciling")
            if request.name == "bad":
                raise RuntimeError("boom")
            return Result()

    clock = FakeClock()
    queue = new_rate_limiting_queue("ensemble", clock=clock)
    controller = Controller("ensemble", Logs(), queue, metrics=ControllerMetrics(CollectorRegistry()),
                            clock=clock, object_key="ensemble", new_id=lambda: next(ids))
    queue.add(Request("ns", "good"))
    queue.add(Request("ns", "bad"))
    controller.process_next_work_item()
    controller.process_next_work_item()
    queue.shutdown()
    first, second, error = lines()
    assert (first["controller"], first["ensemble"], first["reconcileID"]) == ("ensemble", "ns/good", "id-1")
    assert (second["ensemble"], second["reconcileID"]) == ("ns/bad", "id-2")
    assert error["msg"] == "Reconciler error" and error["reconcileID"] == "id-2"
    assert error["error"] == "boom"


def test_default_reconcile_ids_are_uuids():
    assert uuid.UUID(new_reconcile_id()).version == 4


def test_text_format_appends_context_as_key_values():
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "hello", None, None)
    with log_context(ensemble="ns/e"):
        line = TextFormatter().format(record)
    assert "INFO" in line and line.endswith("hello ensemble=ns/e")


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield root
    for handler in [h for h in root.handlers if h not in saved_handlers]:
        root.removeHandler(handler)
    root.setLevel(saved_level)


def test_configure_replaces_its_own_handler_and_keeps_others(root_logger):
    other = logging.NullHandler()
    root_logger.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure("text", "info", first)
    configure("json", "debug", second)
    logging.getLogger("test.configure").debug("visible")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "visible"
    assert other in root_logger.handlers and root_logger.level == logging.DEBUG


def test_configure_validates_its_arguments():
    with pytest.raises(ValueError, match="--log-format"):
        configure("yaml")
    with pytest.raises(ValueError, match="--log-level"):
        configure("json", "loud")
