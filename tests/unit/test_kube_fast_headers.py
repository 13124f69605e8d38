"""controller/kube/fast_headers.py: the same HTTPMessage as http.client's own parser, for any input."""
from __future__ import annotations

import http.client
import io
import random

import pytest

from controller.kube import fast_headers
from controller.kube.fast_headers import original_parse_headers, parse_headers

API_SERVER_HEADERS = (
    b"Audit-Id: 6a1d2f8e-3c1b-4b7e-9d1e-2f3a4b5c6d7e\r\nCache-Control: no-cache, private\r\n"
    b"Content-Type: application/json\r\nX-Kubernetes-Pf-Flowschema-Uid: 0c7a3b2e-1f4d-4a5b-8c9d-0e1f2a3b4c5d\r\n"
    b"X-Kubernetes-Pf-Prioritylevel-Uid: 1d8b4c3f-2a5e-4b6c-9d0e-1f2a3b4c5d6e\r\n"
    b"Date: Mon, 07 Dec 2026 17:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n")

# Header lines plain (the fast path) and odd (folded values, no colon, an empty name, "From "
# lines, blanks around the colon, bare CR, Latin-1 and control bytes: the email parser).
PLAIN = [b"Content-Type: application/json\r\n", b"X-A: 1\r\n", b"X-A: 2\r\n", b"Empty:\r\n",
         b"Blank:    \r\n", b"Tabs:\t\tv\t\r\n", b"Trail: v  \r\n", b"Bare-Lf: v\n", b"Colons: a:b:c\r\n",
         b"From: someone\r\n", b"Weird!#$%&'*+-.^_`|~: v\r\n", b"Quote\": v\r\n", b"Upper-CASE: MiXeD\r\n"]
ODD = [b"Mid: a\rb\r\n", b"  folded continuation\r\n", b"\tfolded with a tab\r\n", b"no colon here\r\n",
       b": no name\r\n", b"Space Name: v\r\n", b"Name : v\r\n", b"From someone\r\n", b"Latin: caf\xe9\r\n",
       b"Ctl: a\x01b\r\n", b"Del: a\x7fb\r\n"]
ENDS = [b"\r\n", b"\n", b""]


def _same(raw: bytes) -> tuple[dict, dict]:
    """Both messages' attributes (defects, exception instances, as their types and texts)."""
    ours, theirs = parse_headers(io.BytesIO(raw)), original_parse_headers(io.BytesIO(raw))
    assert type(ours) is type(theirs)
    return _comparable(ours), _comparable(theirs)


def _comparable(message: http.client.HTTPMessage) -> dict:
    return {**vars(message), "defects": [(type(d), str(d)) for d in message.defects]}


def test_an_api_servers_headers_are_built_without_the_email_parser(monkeypatch) -> None:
    def email_parser(*args: object) -> None:
        raise AssertionError("the email parser was used")
    monkeypatch.setattr(fast_headers, "_parse_text", email_parser)
    message = parse_headers(io.BytesIO(API_SERVER_HEADERS + b'{"kind": "Status"}'))
    assert message["content-type"] == "application/json"
    assert message.get_all("Transfer-Encoding") == ["chunked"]
    assert len(message.items()) == 7


def test_an_api_servers_headers_equal_the_standard_librarys() -> None:
    ours, theirs = _same(API_SERVER_HEADERS)
    assert ours == theirs


@pytest.mark.parametrize("seed", range(4))
def test_generated_header_blocks_equal_the_standard_librarys(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(1500):
        lines = [rng.choice(PLAIN if rng.random() < 0.85 else ODD) for _ in range(rng.randrange(0, 8))]
        end = rng.choice(ENDS)
        raw = b"".join(lines) + end + b"body"
        ours, theirs = _same(raw)
        assert ours == theirs, raw
        fast += bool(end) and all(line in PLAIN for line in lines)
    assert fast > 300  # both paths are exercised


def test_the_standard_librarys_limits_still_apply() -> None:
    too_many = b"".join(b"X-%d: v\r\n" % n for n in range(http.client._MAXHEADERS + 1)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="got more than"):
        parse_headers(io.BytesIO(too_many))
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X: " + b"v" * (http.client._MAXLINE + 1) + b"\r\n\r\n"))


class _Socket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def test_installed_http_client_responses_use_it(monkeypatch) -> None:
    monkeypatch.setattr(http.client, "parse_headers", http.client.parse_headers)  # restored after
    calls = []
    monkeypatch.setattr(fast_headers, "_PLAIN_LINE", _Counting(fast_headers._PLAIN_LINE, calls))
    fast_headers.install()
    fast_headers.install()
    response = http.client.HTTPResponse(_Socket(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}"))
    response.begin()
    assert (response.status, response.getheader("x-a"), response.read()) == (200, "b", b"{}")
    assert len(calls) == 2


class _Counting:
    def __init__(self, pattern, calls: list) -> None:
        self._pattern, self._calls = pattern, calls

    def fullmatch(self, line: bytes):
        self._calls.append(line)
        return self._pattern.fullmatch(line)


def test_a_python_without_read_headers_keeps_its_own_parser(monkeypatch) -> None:
    monkeypatch.setattr(http.client, "parse_headers", original_parse_headers)
    monkeypatch.delattr(http.client, "_read_headers")
    fast_headers.install()
    assert http.client.parse_headers is original_parse_headers
