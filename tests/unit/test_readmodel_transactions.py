"""Reading a cancelled transaction's reasons (uoom/stores/readmodel.py): per item, from botocore's
parsed `CancellationReasons` or, failing that, from the message that lists them."""

from __future__ import annotations

from botocore.exceptions import ClientError

from uoom.stores.readmodel import _reasons, _sort_cancelled

MESSAGE = "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"


def cancelled(reasons: list[dict[str, str]] | None, message: str = MESSAGE) -> ClientError:
    response: dict = {"Error": {"Code": "TransactionCanceledException", "Message": message}}
    if reasons is not None:
        response["CancellationReasons"] = reasons
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


def test_reasons_come_from_the_parsed_list_then_from_the_message() -> None:
    parsed = [{"Code": "ValidationError"}, {"Code": "None"}]
    assert _reasons(cancelled(parsed), 2) == ["ValidationError", "None"]
    assert _reasons(cancelled(None), 2) == ["None", "ConditionalCheckFailed"]
    # a count that does not match the request says nothing about any one item
    assert _reasons(cancelled(None), 3) == ["None", "None", "None"]
    assert _reasons(cancelled(None, "Transaction cancelled"), 2) == ["None", "None"]


def test_each_item_is_settled_by_its_own_reason_and_the_rest_go_again() -> None:
    items = [{"id": name} for name in ("a", "b", "c", "d")]
    outcome: dict[str, str] = {}
    again = _sort_cancelled(
        items, ["None", "ConditionalCheckFailed", "ValidationError", "TransactionConflict"], outcome
    )
    assert outcome == {"b": "stale", "c": "unwritable"}
    assert [s["id"] for s in again] == ["a", "d"]
