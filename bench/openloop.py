"""The open-loop generator: moved to uoom/loadgen/ (shared with `uoom bench`)."""

from uoom.loadgen.openloop import RequestFactory, Run, run

__all__ = ["RequestFactory", "Run", "run"]
