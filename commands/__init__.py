"""The `uoom` command line: daemons as top-level verbs, admin work grouped by noun."""
