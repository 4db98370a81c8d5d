"""The optimizer's key: what the order API presents on `POST /optimize`, and what the optimizer
requires there.

`UOOM_OPTIMIZER_TOKEN` when it is set: the same value on both sides (set it whenever the API and
the optimizer do not share a `UOOM_HOME`, e.g. on different machines). Empty, the default, both
read `UOOM_HOME/optimizer.token`, which the first of them to start creates with 256 random bits,
readable by its owner only: `uoom up` works out of the box, and no two installations share a key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from uoom.config import Settings
from uoom.errors import UoomError

TOKEN_FILE = "optimizer.token"  # noqa: S105 - a file name, not a key


def optimizer_token(settings: Settings) -> str:
    """The key, from the setting or the shared file (created when missing)."""
    configured = settings.optimizer_token.get_secret_value().strip()
    if configured:
        return configured
    path = settings.home / TOKEN_FILE
    try:
        return _read(path) or _create(path)
    except OSError as exc:
        raise UoomError(
            f"UOOM_OPTIMIZER_TOKEN is not set and {path} cannot be read or created ({exc.strerror or exc}); "
            "set UOOM_OPTIMIZER_TOKEN to the same value for the order API and the optimizer"
        ) from None


def _read(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip() or None
    return None


def _create(path: Path) -> str:
    """Written aside, then linked into place: a daemon starting at the same moment reads either
    nothing or the whole key, and the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(aside, path)
    except FileExistsError:
        pass  # another process linked its key first: use that one
    finally:
        aside.unlink()
    return path.read_text().strip()
