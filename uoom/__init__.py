"""uoom core: configuration, domain and adapters. Imports no CLI, TUI or web framework."""

__version__ = "0.1.0"
