"""The in-process status cache: snapshots this worker wrote or read, kept coherent by the order
events (cache_updater.py) and trusted for at most the TTL, the bound on staleness when events stop."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from typing import Any


class SnapshotCache:
    """Each entry lives a random 50-100 % of the TTL, so entries loaded together do not all expire
    together; past 75 % of its life a read asks for a refresh, which runs in the background."""

    def __init__(self, ttl_ms: int, size: int) -> None:
        self.ttl = ttl_ms / 1000
        self.size = size
        self._entries: OrderedDict[str, tuple[float, float, dict[str, Any]]] = OrderedDict()

    def lookup(self, order_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(snapshot or None, whether it is due for a refresh)."""
        entry = self._entries.get(order_id)
        if entry is None:
            return None, False
        stored_at, lifetime, snapshot = entry
        age = time.monotonic() - stored_at
        if age > lifetime:
            return None, False
        return snapshot, age > 0.75 * lifetime

    def get(self, order_id: str) -> dict[str, Any] | None:
        return self.lookup(order_id)[0]

    def refresh(self, snapshot: dict[str, Any]) -> bool:
        """Replace a snapshot this cache holds with a newer one; orders it does not hold are left out."""
        if snapshot["id"] not in self._entries:
            return False
        return self.put(snapshot)

    def put(self, snapshot: dict[str, Any]) -> bool:
        """Whether it was taken: never in place of a newer version (a replayed dead letter, a
        duplicate, a slow backfill can all arrive after it)."""
        if self.size == 0 or self.ttl == 0:
            return False
        key = snapshot["id"]
        current = self._entries.get(key)
        if current is not None and int(current[2]["version"]) > int(snapshot["version"]):
            return False
        self._entries[key] = (time.monotonic(), self.ttl * random.uniform(0.5, 1.0), snapshot)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return True
