"""The dashboard's panels: each draws its part of a `Snapshot` (tui/model.py)."""
