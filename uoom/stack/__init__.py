"""The local stack: PostgreSQL, Redis, Kafka and a DynamoDB endpoint as child processes."""

from uoom.stack.manager import Stack, StackStatus

__all__ = ["Stack", "StackStatus"]
