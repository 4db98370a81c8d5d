"""Adapters to the real services: PostgreSQL, DynamoDB/DAX, Redis, Kafka."""
