"""Property-based requests generated from the daemons' own OpenAPI documents (schemathesis 4), with
every check schemathesis has, against `uoom serve` and `uoom optimizer` as processes: whatever a
client sends, valid or not, the daemon never answers with a server error, refuses what the
document rules out, accepts what it allows (or says why in a documented 4xx), and what it answers
is what the document says. Bounded: about a minute per daemon on the dev machine."""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.e2e.conftest import ApiProcess, free_port, order_body, restaurant, run_daemon
from uoom.config import Settings
from uoom.tokens import optimizer_token

# Examples per operation: the API has 10 operations, the optimizer 1 (plus its open endpoints).
MAX_EXAMPLES = 100
OPTIMIZER_EXAMPLES = 300
# A request the document allows may still be refused for what only the data can tell: an unknown
# restaurant or a total over the column's bound (422), a stale or missing If-Match (412, 428), an
# unknown order (404), an illegal transition (409).
API_ACCEPTANCE = ["2xx", "401", "403", "404", "409", "412", "422", "428", "429"]


@pytest.fixture(scope="module")
def known_orders(api: ApiProcess, api_key: str) -> list[str]:
    """A few real orders, so generated paths and ids sometimes hit one (not only 404s)."""
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api_key}"}) as c:
        return [c.post("/api/orders", json=order_body()).json()["id"] for _ in range(3)]


def _pick(value: Any, choices: list[str]) -> str | None:
    """Deterministically swap about half the generated values for a real one."""
    digest = zlib.crc32(repr(value).encode())
    return choices[digest % len(choices)] if digest % 2 else None


def _uuid(value: Any) -> bool:
    """A valid id: only those are swapped, so a case generated invalid on purpose stays invalid."""
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return isinstance(value, str)


@pytest.fixture
def api_schema(api: ApiProcess, api_key: str, known_orders: list[str]) -> Any:
    config = schemathesis.Config.from_dict(
        {"headers": {"Authorization": f"Bearer {api_key}"}, "request-timeout": 10,
         "generation": {"max-examples": MAX_EXAMPLES},
         "checks": {"positive_data_acceptance": {"expected-statuses": API_ACCEPTANCE}},
         # the cursor is opaque: any string fits the document, only one this API issued is accepted
         "operations": [{"include-path": "/api/customers/{customer_id}/orders",
                         "checks": {"positive_data_acceptance": {"expected-statuses": [*API_ACCEPTANCE, "400"]}}}]}
    )  # fmt: skip
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", config=config)
    restaurants = [str(restaurant(i)[0]) for i in range(15)]

    @schema.hook("map_body")
    def real_restaurant(ctx: Any, body: Any) -> Any:
        # a random restaurantId is always "unknown restaurant": let half reach the write path
        if isinstance(body, dict) and _uuid(body.get("restaurantId")):
            body["restaurantId"] = _pick(body, restaurants) or body["restaurantId"]
        ids = body.get("orderIds") if isinstance(body, dict) else None
        if isinstance(ids, list) and ids and _uuid(ids[0]):
            ids[0] = _pick(body, known_orders) or ids[0]
        return body

    @schema.hook("map_path_parameters")
    def real_order(ctx: Any, path: Any) -> Any:
        if isinstance(path, dict) and _uuid(path.get("order_id")):
            path["order_id"] = _pick(path, known_orders) or path["order_id"]
        if isinstance(path, dict) and _uuid(path.get("customer_id")) and _pick(path, ["x"]):
            path["customer_id"] = str(uuid.UUID(int=0))
        return path

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")
QUIET = {"deadline": None, "suppress_health_check": list(HealthCheck)}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **QUIET)  # type: ignore[arg-type]
def test_generated_requests_to_the_api_pass_every_check(case: Any) -> None:
    """No 5xx, status codes, content types, headers and bodies as /openapi.json declares them,
    invalid data refused, valid data accepted (see API_ACCEPTANCE), and the rest of the checks."""
    case.call_and_validate()


# --- the optimizer's contract: POST /optimize (and its open endpoints) ------------------------------


@pytest.fixture(scope="module")
def optimizer_url(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, UOOM_DISPATCH_INTERVAL="3600")
    log = tmp_path_factory.mktemp("optimizer") / "optimizer.log"
    with run_daemon(log, ["optimizer", "--port", str(port)], env, f"{url}/healthz"):
        yield url


@pytest.fixture
def optimizer_document(optimizer_url: str) -> Any:
    config = schemathesis.Config.from_dict(
        {"headers": {"Authorization": f"Bearer {optimizer_token(Settings())}"}, "request-timeout": 10,
         "generation": {"max-examples": OPTIMIZER_EXAMPLES}}
    )  # fmt: skip
    return schemathesis.openapi.from_url(f"{optimizer_url}/openapi.json", config=config)


optimizer_schema = schemathesis.pytest.from_fixture("optimizer_document")


@optimizer_schema.parametrize()
@settings(max_examples=OPTIMIZER_EXAMPLES, **QUIET)  # type: ignore[arg-type]
def test_generated_requests_to_the_optimizer_pass_every_check(case: Any) -> None:
    case.call_and_validate()
