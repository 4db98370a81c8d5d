"""The optimizer daemon: channel assignment (exact min-cost flow) over HTTP, live rankings, re-optimization."""
