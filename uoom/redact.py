"""Secrets out of whatever is shown or logged: one place for `uoom config`, `uoom doctor`, the
one-line errors and every daemon's log lines.

A URL keeps everything but its secrets: the password of its user info (`app:********@db`) and
the value of any query parameter whose name says it holds one (`?password=********`,
`sslpassword`, `token`, `secret`, `api_key`, ...). It is taken apart by hand, not by `urlsplit`,
whose `.port` raises on several hosts (`db1:5432,db2:5433`) and which refuses some IPv6 hosts: a
display must never fail on the URL it shows. In free text (a log line, an exception's message)
every URL is masked so, and so are `password=...`-style pairs and `Bearer` tokens.
"""

from __future__ import annotations

import re

MASK = "********"
# names of query parameters and key=value pairs whose value is a secret
_SECRET = r"[\w.-]*?(?:password|passwd|pwd|secret|token|credential|signature)[\w.-]*"  # noqa: S105 - names
_KEY = r"[\w.-]*?[_-]key"  # api_key, x-api-key, secret_access_key; in free text only long values:
# `api_key=3` is a Kafka protocol field in aiokafka's debug lines, not a secret
_SECRET_PARAM = re.compile(rf"(?i)^(?:{_SECRET}|{_KEY})$")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#\s]*)(?P<rest>[^\s]*)")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_PAIR_IN_TEXT = re.compile(
    rf"(?i)\b({_SECRET}|{_KEY}(?=\s*[=:]\s*[^\s&,;'\"]{{8}}))(\s*[=:]\s*)(?!{re.escape(MASK)})([^\s&,;'\"]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!\*)[^\s,;'\"]+")


def mask_url(url: str) -> str:
    """The URL with its password and secret query values replaced by ********."""
    match = _URL.fullmatch(url)
    if match is None:
        return url
    netloc, rest = match["netloc"], match["rest"]
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    path, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_mask_param(p) for p in query.split("&")) + hash_ + fragment
    return f"{match['scheme']}{netloc}{path}{question}{query}"


def _mask_param(param: str) -> str:
    name, eq, _ = param.partition("=")
    return f"{name}={MASK}" if eq and _SECRET_PARAM.match(name) else param


def mask_secrets(text: str) -> str:
    """Free text with every URL masked, and `password=...` pairs and `Bearer` tokens hidden."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m[0]), text)
    text = _PAIR_IN_TEXT.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
    return _BEARER.sub(lambda m: f"{m[1]}{MASK}", text)
