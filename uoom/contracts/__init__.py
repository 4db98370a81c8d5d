"""The wire contracts between uoom's processes: one pydantic model per message, used by both ends."""
