"""One logging set-up for every daemon process: our lines at INFO (DEBUG with UOOM_DEBUG), the
client libraries' own retry chatter at DEBUG only.

aiokafka logs each retry of its coordinator and connections at WARNING or ERROR (a fresh
broker answers GroupCoordinatorNotAvailable for its first seconds, which is normal); the
daemons track their services themselves (daemons.kit.health) and say once, clearly, when
something stays wrong.
"""

from __future__ import annotations

import logging

from uoom.errors import describe
from uoom.redact import mask_secrets

__all__ = ["describe", "setup_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("aiokafka",)  # libraries that retry by themselves and log every attempt loudly
SILENT = logging.CRITICAL + 1


class _MaskingFormatter(logging.Formatter):
    """No secret in a log line: a URL's password, `password=...`, a Bearer token (uoom/redact.py),
    also inside a traceback or a library's message."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class _DaemonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, one format; the chatty libraries' records (only created when debugging) are
    shown as what they are to an operator: DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_MaskingFormatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in CHATTY:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        super().emit(record)


def setup_logging(debug: bool = False) -> None:
    """Idempotent: a uvicorn worker process calls it again from its app factory."""
    root = logging.getLogger()
    if not any(isinstance(h, _DaemonHandler) for h in root.handlers):
        root.addHandler(_DaemonHandler())
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else SILENT)
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
