"""Health checks an operator runs: `uoom dax health` (health/dax.py) and `uoom doctor`
(health/platform.py), as rows of `Check` (health/checks.py), each bounded in time."""
