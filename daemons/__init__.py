"""Long-running processes: the order API, the outbox relay, the optimizer, and their supervisor."""
