"""Reading a daemon's metrics document (docs/metrics.md) over HTTP, for every reader: `uoom
metrics`, the daemons' `--check`, `uoom doctor`, and the dashboard, which polls every second and so
keeps one session (its connections stay open between reads: no new TCP handshake per poll).

aiohttp is imported when a session opens, so importing this module costs nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from uoom.redact import mask_url

if TYPE_CHECKING:
    import aiohttp

    from uoom.config import Settings

PATHS = {"api": "/api/metrics", "optimizer": "/api/metrics", "relay": "/api/v1/metrics"}
TIMEOUT_SECONDS = 3.0


def metrics_url(settings: Settings, service: str, base: str | None = None) -> str:
    """The metrics document's URL of `service` (api, optimizer, relay) at `base`, or at the URL
    the settings give it (`uoom config` shows it, masked)."""
    configured = {"api": settings.effective_api_url, "optimizer": settings.effective_optimizer_url,
                  "relay": settings.effective_relay_url}  # fmt: skip
    return (base or configured[service]).rstrip("/") + PATHS[service]


def api_key_headers(api_key: str | None) -> dict[str, str] | None:
    """What an API whose metrics need a key (UOOM_API_METRICS_REQUIRE_KEY) wants to see."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else None


class MetricsReader:
    """One aiohttp session for any number of reads; `async with MetricsReader() as reader:`."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> MetricsReader:
        import aiohttp

        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=8, keepalive_timeout=60),
        )
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(
        self, name: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any] | None, str]:
        """(the metrics document, "") from the daemon `name` at `url`, or (None, one line saying why not)."""
        import aiohttp
        import orjson

        assert self._session is not None, "use `async with MetricsReader() as reader`"
        shown = mask_url(url)  # the messages are shown and logged
        try:
            async with self._session.get(url, headers=headers) as response:
                if response.status in (401, 403):
                    return None, f"{name} at {shown} wants an API key for its metrics (UOOM_API_METRICS_REQUIRE_KEY)"
                document = orjson.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return None, f"{name} not answering at {shown} ({type(exc).__name__})"
        if not isinstance(document, dict) or "status" not in document:
            return None, f"{name}: {shown} did not answer the metrics document"
        return document, ""


async def read_once(name: str, url: str, headers: dict[str, str] | None = None,
                    seconds: float = TIMEOUT_SECONDS) -> tuple[dict[str, Any] | None, str]:  # fmt: skip
    """One read with a session of its own, bounded by `seconds`: for a command that reads once."""
    async with MetricsReader(seconds) as reader:
        return await reader.read(name, url, headers)
