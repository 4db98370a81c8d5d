"""Numbers as the JSON documents declare them, for every request body: pydantic's lax mode would
take `true` for 1 and `"3"` for 3, so a body the OpenAPI document rules out was accepted. A
`Strict` int or float still takes a JSON integer for a float; a `Money` amount takes a JSON number
and nothing else (a `Decimal` in Python, converted once)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Strict

Integer = Annotated[int, Strict()]
Real = Annotated[float, Strict()]


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("must be a JSON number")
    return value


JsonNumber = BeforeValidator(_number)  # for Decimal fields whose schema says "number"
