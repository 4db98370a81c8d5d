"""Abuse and bad input, as classes: every numeric field of the request bodies against the column it
ends up in, every way text reaches PostgreSQL, every header the API reads. Whatever the value, the
answer is a clear 4xx (a problem body naming the field when the API got as far as reading it),
never a 500, and nothing is stored."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import ApiProcess, order_body
from tests.e2e.test_api_orders import create, is_problem
from uoom.domain import columns

# --- raw HTTP: bytes httpx would refuse to send, exactly as a hostile client sends them ----------


def send(api: ApiProcess, method: str, path: str | bytes, headers: list[tuple[str, bytes]],
         body: bytes = b"", length: bytes | None = None) -> tuple[int, str, bytes]:  # fmt: skip
    """(status, content type, body) of one request sent byte for byte over a socket: NUL, control
    bytes and non-ASCII in the request line and the header values, as no HTTP library sends them.
    `length` replaces the true Content-Length."""
    url = urlsplit(api.url)
    target = path if isinstance(path, bytes) else path.encode("latin-1")
    head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + url.netloc.encode(), b"Connection: close"]
    head += [name.encode() + b": " + value for name, value in headers]
    head.append(b"Content-Length: " + (str(len(body)).encode() if length is None else length))
    with socket.create_connection((url.hostname or "", url.port or 80), timeout=10) as conn:
        conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                received += chunk
    if not received:
        return 400, "text/plain", b"(the server closed the connection without an answer)"
    status_line, _, rest = received.partition(b"\r\n")
    raw_headers, _, answer = rest.partition(b"\r\n\r\n")
    fields = dict(line.split(b":", 1) for line in raw_headers.split(b"\r\n") if b":" in line)
    content_type = {k.strip().lower(): v.strip() for k, v in fields.items()}.get(b"content-type", b"")
    return int(status_line.split()[1]), content_type.decode("latin-1"), answer


def clear_4xx(status: int, content_type: str, body: bytes) -> None:
    """A client error; when the application answered (not the HTTP parser refusing the bytes with
    its own plain 400), a problem body."""
    assert 400 <= status < 500, (status, body[:300])
    if not (status == 400 and content_type.startswith("text/plain")):
        assert content_type.startswith("application/problem+json"), (status, content_type, body[:300])


# --- 1. numbers that do not fit the column they are stored in -----------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def numeric_fields(doc: dict[str, Any], schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, minimum, maximum) of every number in a request body schema, nested ones included."""
    schema = _resolve(doc, schema)
    options = [_resolve(doc, s) for s in schema.get("anyOf", [schema])]
    for option in options:
        if option.get("type") in ("number", "integer"):
            yield path, option.get("minimum"), option.get("maximum")
            return
    for option in options:
        if option.get("type") == "object":
            for name, child in option.get("properties", {}).items():
                yield from numeric_fields(doc, child, f"{path}.{name}".lstrip("."))
        elif option.get("type") == "array":
            yield from numeric_fields(doc, option["items"], f"{path}.0")


def set_path(body: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        body = body[int(part)] if isinstance(body, list) else body[part]
    if isinstance(body, list):
        body[int(last)] = value
    else:
        body[last] = value


@pytest.fixture(scope="module")
def openapi(api: ApiProcess) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{api.url}/openapi.json").json()
    return document


def request_bodies(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ "METHOD path" -> the JSON schema of its request body, for every operation that takes one."""
    found = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                found[f"{method.upper()} {path}"] = content["schema"]
    return found


def test_the_request_bodies_have_the_numeric_fields_this_module_covers(openapi: dict[str, Any]) -> None:
    """A new numeric field in a request body must be added to the bound checks below."""
    found = {op: sorted(p for p, _, _ in numeric_fields(openapi, s)) for op, s in request_bodies(openapi).items()}
    assert {op: paths for op, paths in found.items() if paths} == {
        "POST /api/orders": ["deliveryAddress.latitude", "deliveryAddress.longitude", "items.0.quantity",
                             "items.0.unitPrice"],
    }  # fmt: skip


def _at_extreme(doc: dict[str, Any], extreme: int) -> tuple[dict[str, Any], list[str]]:
    """A create body with the most items the document allows, every number at its min or max."""
    schema = _resolve(doc, request_bodies(doc)["POST /api/orders"])
    most = _resolve(doc, schema["properties"]["items"])["maxItems"]
    body = order_body()
    body["items"] = [dict(body["items"][0], itemId=f"i{n}") for n in range(most)]
    paths = []
    for path, low, high in numeric_fields(doc, schema):
        value = (low, high)[extreme]
        paths.append(path)
        if path.startswith("items.0."):
            for n in range(most):
                set_path(body, path.replace(".0.", f".{n}.", 1), value)
        else:
            set_path(body, path, value)
    return body, paths


@pytest.mark.parametrize("extreme", [0, 1], ids=["minimum", "maximum"])
async def test_every_number_at_the_bound_the_document_gives_is_stored_or_refused_naming_the_field(
    client: httpx.AsyncClient, db: asyncpg.Connection, openapi: dict[str, Any], extreme: int
) -> None:
    """All numbers of the create body at once at their documented bound, times the most items:
    the derived total must fit `orders.total` or be refused, never overflow it (a 500)."""
    body, _ = _at_extreme(openapi, extreme)
    response = await client.post("/api/orders", json=body)
    customer = uuid.UUID(body["customerId"])
    stored = await db.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", customer)
    if response.status_code == 201:
        assert Decimal(response.json()["total"]) <= columns.ORDER_TOTAL.largest
        assert stored == 1
        return
    problem = is_problem(response, 422)
    assert "items" in [e["field"] for e in problem["errors"]], problem
    assert str(columns.ORDER_TOTAL.largest) in str(problem["errors"]), problem
    assert stored == 0


async def test_a_total_at_the_columns_bound_is_stored_and_one_cent_more_is_422_naming_items(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    largest = columns.ORDER_TOTAL.largest  # numeric(10,2): 99999999.99
    fills = [{"itemId": "a", "name": "A", "quantity": 1000, "unitPrice": "99999.99"},
             {"itemId": "b", "name": "B", "quantity": 1, "unitPrice": "9.99"}]  # fmt: skip
    order = await create(client, items=fills)
    assert Decimal(order["total"]) == largest
    one_more = order_body(items=[*fills, {"itemId": "c", "name": "C", "quantity": 1, "unitPrice": "0.01"}])
    problem = is_problem(await client.post("/api/orders", json=one_more), 422)
    [error] = problem["errors"]
    assert error["field"] == "items" and "items" in problem["detail"], problem
    assert "100000000.00" in error["message"] and str(largest) in error["message"], problem
    customer = uuid.UUID(one_more["customerId"])
    assert await db.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", customer) == 0


# --- 2. text PostgreSQL cannot store, by every way text comes in ---------------------------------

# NUL (refused in text and jsonb), a lone surrogate (not UTF-8), C0 and C1 control characters
NASTY_TEXT = {"NUL": "a\x00b", "lone surrogate": "a\ud800b", "escape": "a\x1bb", "DEL": "a\x7fb", "C1": "a\x85b"}
UNSTORABLE = ("NUL", "lone surrogate")


def string_positions(value: Any, path: str = "") -> Iterator[str]:
    """Every string leaf of a JSON value, as a dotted path."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from string_positions(child, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            yield from string_positions(child, f"{path}.{n}".lstrip("."))
    elif isinstance(value, str):
        yield path


def object_positions(value: Any, path: str = "") -> Iterator[str]:
    """Every JSON object of a value (the top level is ""), where a hostile key can go."""
    if isinstance(value, dict):
        yield path
        for key, child in value.items():
            yield from object_positions(child, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            yield from object_positions(child, f"{path}.{n}".lstrip("."))


def get_path(body: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def bodies(order_id: str) -> dict[str, tuple[str, str, dict[str, str], dict[str, Any]]]:
    """Every JSON body the API reads: name -> (method, path, extra headers, a valid body)."""
    create_body = order_body(notes="ring twice")
    return {
        "create": ("POST", "/api/orders", {}, create_body),
        "patch": ("PATCH", f"/api/orders/{order_id}/status", {"If-Match": '"1"'},
                  {"status": "CONFIRMED", "reason": "on its way"}),
        "batch": ("POST", "/api/orders/status:batch", {}, {"orderIds": [order_id]}),
    }  # fmt: skip


@pytest.mark.parametrize("kind", list(NASTY_TEXT))
async def test_hostile_text_anywhere_in_a_json_body_is_stored_as_given_or_refused_naming_it(
    client: httpx.AsyncClient, db: asyncpg.Connection, kind: str
) -> None:
    """Every string value and every object key of every body the API reads, one at a time."""
    order = await create(client)
    nasty = NASTY_TEXT[kind]
    json_type = {"content-type": "application/json"}
    for name, (method, path, headers, valid) in bodies(order["id"]).items():
        spoilt: list[tuple[str, dict[str, Any]]] = []
        for position in string_positions(valid):
            body = json.loads(json.dumps(valid))
            set_path(body, position, get_path(body, position) + nasty)
            spoilt.append((position, body))
        for position in object_positions(valid):
            body = json.loads(json.dumps(valid))
            get_path(body, position)[f"k{nasty}"] = "v"
            spoilt.append((f"{position}.k{nasty}".lstrip("."), body))
        for position, body in spoilt:
            # json.dumps escapes a lone surrogate as \\ud800: valid JSON, which httpx would refuse
            response = await client.request(method, path, content=json.dumps(body), headers={**json_type, **headers})
            where = f"{name} {position!r}"
            assert response.status_code < 500, (where, response.text)
            if response.status_code >= 400:
                is_problem(response, response.status_code)
            elif kind in UNSTORABLE:
                raise AssertionError(f"{where}: PostgreSQL cannot store {kind}, yet {response.status_code}")
            if name == "patch" and response.status_code == 200:  # move it back for the next try
                order = await create(client)
                method, path, headers, _ = bodies(order["id"])["patch"]
    stored = await db.fetchval("SELECT count(*) FROM orders WHERE notes LIKE $1", f"%{NASTY_TEXT['DEL']}%")
    assert stored >= (1 if kind == "DEL" else 0)  # storable control characters are kept as given


def test_body_bytes_that_are_not_utf8_are_a_4xx(api: ApiProcess, api_key: str) -> None:
    auth = [("Authorization", f"Bearer {api_key}".encode()), ("Content-Type", b"application/json")]
    valid = json.dumps(order_body()).encode()
    for raw in (valid.replace(b"Test Street", b"Test \xff Street"), valid.replace(b"Test", b"\xed\xa0\x80"),
                valid.replace(b"Test", b"\xc0\x80"), b"\xfe\xff" + valid):  # fmt: skip
        clear_4xx(*send(api, "POST", "/api/orders", auth, raw))


NASTY_BYTES = [b"\x00", b"%00", b"%ED%A0%80", b"%FF", b"%C0%80", b"\xb2", b"%C2%B2", b"\x1b", b"%0A"]


def test_hostile_path_and_query_parameters_are_a_4xx(api: ApiProcess, api_key: str) -> None:
    auth = [("Authorization", f"Bearer {api_key}".encode())]
    customer = str(uuid.uuid4())
    for nasty in NASTY_BYTES:
        text = nasty.decode("latin-1")
        for path in (f"/api/orders/{text}/status", f"/api/orders/{text}", f"/api/customers/{text}/orders",
                     f"/api/customers/{customer}/orders?limit={text}",
                     f"/api/customers/{customer}/orders?cursor={text}",
                     f"/api/customers/{customer}/orders?limit=2&cursor=abc{text}"):  # fmt: skip
            clear_4xx(*send(api, "GET", path, auth))


@pytest.mark.parametrize("kind", list(NASTY_TEXT))
def test_a_cursor_carrying_hostile_text_is_400(api: ApiProcess, api_key: str, kind: str) -> None:
    auth = [("Authorization", f"Bearer {api_key}".encode())]
    customer = str(uuid.uuid4())
    nasty = NASTY_TEXT[kind]
    for spoilt in ("updatedAt", "orderId", "customerId"):
        key = {"customerId": {"S": customer}, "updatedAt": {"S": "2026-11-30T00:00:00+00:00"},
               "orderId": {"S": str(uuid.uuid4())}}  # fmt: skip
        key[spoilt]["S"] += nasty
        raw = json.dumps(key).encode()
        cursor = base64.urlsafe_b64encode(raw).decode()
        status, content_type, body = send(api, "GET", f"/api/customers/{customer}/orders?cursor={cursor}", auth)
        assert status in (200, 400), (spoilt, status, body[:300])
        if status == 400:
            clear_4xx(status, content_type, body)


# --- 3. every header the API reads, each parsed in one place into one clear 4xx ------------------

# Values that pass one digit check and fail the next: str.isdigit() is True for '²' and '¹', which
# int() refuses; '+1', ' 1' and '1_0' are ints to int() but not versions; beyond an integer column.
IF_MATCH_MALFORMED = [b'"\xb2"', b'"\xb9"', b"\xb3", b'"+1"', b'" 1"', b'"1 "', b'"1_0"', b'"-1"', b'"0x1"',
                      b'"1.0"', b'"1e3"', b'""', b"W/", b'W/""', b"*", b'"1", "2"', b'"1', b'1"',
                      b'"99999999999999999999"', b'"2147483648"', b'"9223372036854775808"',
                      b'"' + b"9" * 400 + b'"', b'"\xd9\xa1"', b"\xef\xbc\x91"]  # fmt: skip
IF_MATCH_VALID = [b'"1"', b'W/"1"', b"1", b' "1" ']


def test_every_malformed_if_match_is_the_same_400_problem(api: ApiProcess, api_key: str) -> None:
    order = httpx.post(f"{api.url}/api/orders", json=order_body(), headers={"Authorization": f"Bearer {api_key}"})
    path = f"/api/orders/{order.json()['id']}/status"
    base = [("Authorization", f"Bearer {api_key}".encode()), ("Content-Type", b"application/json")]
    body = b'{"status": "CANCELLED"}'
    for value in IF_MATCH_MALFORMED:
        status, content_type, answer = send(api, "PATCH", path, [*base, ("If-Match", value)], body)
        assert (status, content_type) == (400, "application/problem+json"), (value, status, answer[:300])
        assert "If-Match" in json.loads(answer)["detail"], (value, answer)
    for value in IF_MATCH_VALID:  # a stale version (order is at 1, "0" would be 412) is not malformed
        status, _, answer = send(api, "PATCH", path, [*base, ("If-Match", value.replace(b"1", b"7"))], body)
        assert status == 412, (value, status, answer[:300])
    status, _, answer = send(api, "PATCH", path, [*base, ("If-Match", b'W/"1"')], body)
    assert status == 200, answer


IDEMPOTENCY_MALFORMED = [b"\xff\xfe", b"caf\xe9", b"a" * 201, b"\x85", b"k\xa0"]


def test_every_malformed_idempotency_key_is_the_same_400_problem_and_stores_nothing(
    api: ApiProcess, api_key: str
) -> None:
    base = [("Authorization", f"Bearer {api_key}".encode()), ("Content-Type", b"application/json")]
    for value in IDEMPOTENCY_MALFORMED:
        body = order_body()
        status, content_type, answer = send(api, "POST", "/api/orders", [*base, ("Idempotency-Key", value)],
                                            json.dumps(body).encode())  # fmt: skip
        assert (status, content_type) == (400, "application/problem+json"), (value, status, answer[:300])
        assert "Idempotency-Key" in json.loads(answer)["detail"], (value, answer)
    for value in (b"a", b"retry-" + uuid.uuid4().hex.encode(), b"~!@#$%^&*()_+{}|:<>?` -=[];',./", b"a" * 200):
        status, _, answer = send(api, "POST", "/api/orders", [*base, ("Idempotency-Key", value)],
                                 json.dumps(order_body()).encode())  # fmt: skip
        assert status == 201, (value, status, answer[:300])


HEADERS_READ = ["Authorization", "X-API-Key", "Idempotency-Key", "If-Match", "Content-Type", "Content-Length"]
HOSTILE_VALUES = [b"", b"\x00", b"a\x00b", b"\x01", b"\x1b[31m", b"\x7f", b"\x85", b"\xff\xfe", b"\xb2",
                  b"\xed\xa0\x80", b"x" * 8000, b"Bearer", b"Bearer ", b"Bearer \xb2", b"-1", b"+1",
                  b"99999999999999999999"]  # fmt: skip


@pytest.mark.parametrize("header", HEADERS_READ)
def test_every_header_the_api_reads_with_hostile_values_is_never_a_server_error(
    api: ApiProcess, api_key: str, header: str
) -> None:
    order = httpx.post(f"{api.url}/api/orders", json=order_body(), headers={"Authorization": f"Bearer {api_key}"})
    order_id = order.json()["id"]
    patch_body, create_body = b'{"status": "CONFIRMED"}', json.dumps(order_body()).encode()
    for value in HOSTILE_VALUES:
        base = {"Authorization": f"Bearer {api_key}".encode(), "Content-Type": b"application/json",
                "If-Match": b'"1"'}  # fmt: skip
        for method, path, body in (("POST", "/api/orders", create_body),
                                   ("PATCH", f"/api/orders/{order_id}/status", patch_body),
                                   ("GET", f"/api/orders/{order_id}/status", b"")):  # fmt: skip
            if header == "Content-Length":
                status, content_type, answer = send(api, method, path, list(base.items()), body, length=value)
            else:
                status, content_type, answer = send(api, method, path, list({**base, header: value}.items()), body)
            assert status < 500, (header, value, method, status, answer[:300])
            if status >= 400:
                clear_4xx(status, content_type, answer)
