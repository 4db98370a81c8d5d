"""The use cases: what the platform does to an order, each over a unit of work
(uoom/stores/unit_of_work.py) so that the order and its outbox event change together.

- orders.py: `create_order` (channel assignment, idempotent replay), `change_status`
  (If-Match version, legal transitions).
- channels.py: `reassign_channel`, the re-optimizer's move of an open order.
- Next: the dead-letter replay (`uoom dlq replay`) goes in `dead_letters.py` here: a dead letter
  back into the outbox and its `replayed_at` set, in one unit of work, so the relay publishes it
  again in the aggregate's order.

The use cases raise domain errors (uoom/domain/errors.py); entrypoints map them (the API to
problem+json in daemons/api/problems.py). Their collaborators are protocols (ports.py), so unit
tests run them against fakes (tests/unit/test_order_services.py).
"""
