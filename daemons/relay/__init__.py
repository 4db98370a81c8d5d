"""`uoom relay`: the outbox relay daemon (outbox -> Kafka, DLQ, read-model projector, pruning)."""

from daemons.relay.daemon import Relay

__all__ = ["Relay"]
