"""http.client's response headers built without the email package's feed parser.

http.client reads a response's header lines itself, then hands their text to
``email.parser``, which costs about 22 us per response for the 7 headers an API server
sends (measured; ~1.2 us of that is reading the lines), about 7% of this client's ~300 us
of CPU per request. When every line is a plain ``Name: value`` line of printable ASCII, the
same ``HTTPMessage`` (the same headers, payload and defects as the email parser gives) is
built directly; anything else (a folded line, a line without a colon, a ``From `` line, any
other byte) goes to the email parser as before.
The replacement is process-wide (http.client looks ``parse_headers`` up per response), which
is safe because it returns what the original returns for every input.
"""
from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, BinaryIO

_ORIGINAL = http.client.parse_headers
# A field name (printable ASCII but ":" and space), ":", optional blanks, a value of printable
# ASCII and tabs, and the line's end: what compat32's header_source_parse stores as
# (name, value.lstrip(" \t").rstrip("\r\n")).
_PLAIN_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([\t\x20-\x7e]*)\r?\n")


def parse_headers(fp: BinaryIO, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: same signature, same result."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # its limits and errors
    if lines[-1] not in (b"\r\n", b"\n"):  # the connection closed inside the header block
        return _parse_text(lines, _class)
    fields = []
    for line in lines[:-1]:
        plain = _PLAIN_LINE.fullmatch(line)
        if plain is None:
            return _parse_text(lines, _class)
        fields.append((plain[1].decode("ascii"), plain[2].decode("ascii")))
    message = _class()
    message._headers = fields  # type: ignore[attr-defined]  # the list the email parser fills
    message.set_payload("")
    return message


def _parse_text(lines: list[bytes], _class: type[http.client.HTTPMessage]) -> Any:
    """What the original does after reading the lines."""
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=_class).parsestr(text)


def install() -> None:
    """Make http.client use ``parse_headers`` (idempotent). A Python whose http.client no longer
    reads header lines with ``_read_headers`` keeps its own parser."""
    if callable(getattr(http.client, "_read_headers", None)):
        http.client.parse_headers = parse_headers  # type: ignore[assignment]


def original_parse_headers(fp: BinaryIO, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """The standard library's own, kept for comparison (tests)."""
    return _ORIGINAL(fp, _class)
