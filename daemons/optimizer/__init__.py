"""The optimizer daemon: CP-SAT channel assignment over HTTP, live rankings, re-optimization."""
