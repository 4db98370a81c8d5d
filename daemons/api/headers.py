"""The request headers the order API reads, each parsed in one place into a value or one clear
400 problem. Before, a value could pass one check and fail the next: `str.isdigit()` is True for
'²', which `int()` refuses (a 500). A header is now either exactly what the pattern says or a 400;
the OpenAPI document declares the same patterns. (The API key headers: daemons/api/auth.py.)"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Header

from daemons.api.problems import Problem

# ASCII digits only, as many as an `integer` version column can reach in practice
VERSION = re.compile(r'(?:W/)?"([0-9]{1,9})"|([0-9]{1,9})')
VERSION_PATTERN = r'^[ \t]*((W/)?"[0-9]{1,9}"|[0-9]{1,9})[ \t]*$'
# printable ASCII (an RFC 8941 string's characters), stored with the answer it replays
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{0,200}")  # empty: no key, as when the header is absent
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{0,200}$"


def _declared(pattern: str, description: str) -> Any:
    """A header as documented: FastAPI does not check `json_schema_extra`, so a value outside the
    pattern reaches the parser below and gets its 400, not FastAPI's 422."""
    return Header(description=description, json_schema_extra={"pattern": pattern})


# Optional headers default to "" (absent): declared `str | None`, the document would allow a null.
IfMatch = Annotated[str, _declared(VERSION_PATTERN, 'The order\'s version as its ETag gave it: "3"')]
IdempotencyKey = Annotated[
    str, _declared(IDEMPOTENCY_KEY_PATTERN, "Up to 200 printable ASCII characters; a retry sends the same")
]


def if_match_version(value: str | None) -> int:
    """The version an If-Match names: `"3"`, `W/"3"` or `3`. Missing: 428; anything else: 400."""
    if not value:
        raise Problem(428, "Precondition required", "send If-Match with the order's version")
    match = VERSION.fullmatch(value.strip(" \t"))  # HTTP's optional whitespace, not str.strip()'s
    if match is None:
        raise Problem(400, "Bad request", 'If-Match must be the order\'s version number, e.g. "3"')
    return int(match[1] or match[2])


def idempotency_key(value: str | None) -> str | None:
    """The client's Idempotency-Key, or None when it sent none."""
    if not value:
        return None
    if IDEMPOTENCY_KEY.fullmatch(value) is None:
        raise Problem(400, "Bad request", "Idempotency-Key must be up to 200 printable ASCII characters")
    return value
