"""The open-loop load generator shared by `uoom bench` and the benchmarks in bench/: a fixed
schedule of requests, latency from each request's intended send time into an HDR histogram,
errors by kind, late starts and generator saturation; and what a report says about the machine
and the processes that served the load (CPU per process tree)."""

from uoom.loadgen.histogram import Histogram, latency_histogram
from uoom.loadgen.openloop import RequestFactory, Run, intended_times, run

__all__ = ["Histogram", "RequestFactory", "Run", "intended_times", "latency_histogram", "run"]
