"""The use cases: what the platform does to an order, each over a unit of work
(uoom/stores/unit_of_work.py) so that the order and its outbox event change together.

- orders.py: `create_order` (channel assignment, idempotent replay), `change_status`
  (If-Match version, legal transitions).
- channels.py: `reassign_channel`, the re-optimizer's move of an open order.
- dead_letters.py: `replay_dead_letters` (`uoom dlq replay`: dead letters back into the outbox
  with their own ids, rate-bounded, audited) and `purge_dead_letters`, over a small store of
  their own (uoom/stores/dead_letters.py: each change and its audit count in one transaction).

The use cases raise domain errors (uoom/domain/errors.py); entrypoints map them (the API to
problem+json in daemons/api/problems.py). Their collaborators are protocols (ports.py), so unit
tests run them against fakes (tests/unit/test_order_services.py).
"""
