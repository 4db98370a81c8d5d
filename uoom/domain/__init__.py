"""Pure domain: orders and their state machine, events. No I/O here."""
