"""Property-based requests generated from the API's own `/openapi.json` (schemathesis 4) against
`uoom serve` as a process: whatever a client sends, valid or not, the daemon never answers with a
server error, and what it answers is what the document says."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import ApiProcess, order_body, restaurant

# Per operation (10 of them): under a minute for the whole module on the dev machine.
MAX_EXAMPLES = 150


@pytest.fixture(scope="module")
def known_orders(api: ApiProcess, api_key: str) -> list[str]:
    """A few real orders, so generated paths and ids sometimes hit one (not only 404s)."""
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api_key}"}) as c:
        return [c.post("/api/orders", json=order_body()).json()["id"] for _ in range(3)]


def _pick(value: Any, choices: list[str]) -> str | None:
    """Deterministically swap about half the generated values for a real one."""
    digest = zlib.crc32(repr(value).encode())
    return choices[digest % len(choices)] if digest % 2 else None


@pytest.fixture
def api_schema(api: ApiProcess, api_key: str, known_orders: list[str]) -> Any:
    config = schemathesis.Config.from_dict(
        {"headers": {"Authorization": f"Bearer {api_key}"}, "request-timeout": 10,
         "generation": {"max-examples": MAX_EXAMPLES}}
    )  # fmt: skip
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", config=config)
    restaurants = [str(restaurant(i)[0]) for i in range(15)]

    @schema.hook("map_body")
    def real_restaurant(ctx: Any, body: Any) -> Any:
        # a random restaurantId is always "unknown restaurant": let half reach the write path
        if isinstance(body, dict) and "restaurantId" in body:
            body["restaurantId"] = _pick(body, restaurants) or body["restaurantId"]
        if isinstance(body, dict) and isinstance(body.get("orderIds"), list) and body["orderIds"]:
            body["orderIds"][0] = _pick(body, known_orders) or body["orderIds"][0]
        return body

    @schema.hook("map_path_parameters")
    def real_order(ctx: Any, path: Any) -> Any:
        if isinstance(path, dict) and "order_id" in path:
            path["order_id"] = _pick(path, known_orders) or path["order_id"]
        if isinstance(path, dict) and "customer_id" in path and _pick(path, ["x"]):
            path["customer_id"] = str(uuid.UUID(int=0))
        return path

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")
QUIET = {"deadline": None, "suppress_health_check": list(HealthCheck)}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **QUIET)  # type: ignore[arg-type]
def test_generated_requests_never_get_a_server_error(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES // 3, **QUIET)  # type: ignore[arg-type]
def test_responses_match_the_openapi_document(case: Any) -> None:
    """Status codes, content types, headers and bodies are the ones /openapi.json declares.
    (Not the acceptance checks: a schema-valid body naming an unknown restaurant is rightly 422.)"""
    case.call_and_validate(
        checks=[status_code_conformance, content_type_conformance, response_headers_conformance,
                response_schema_conformance]
    )  # fmt: skip
