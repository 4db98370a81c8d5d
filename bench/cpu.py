"""CPU per process tree: moved to uoom/loadgen/cpu.py (shared with `uoom bench`)."""

from uoom.loadgen.cpu import CpuMeter, stack_pids, tree_seconds

__all__ = ["CpuMeter", "stack_pids", "tree_seconds"]
