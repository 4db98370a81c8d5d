"""The dispatch benchmark: the synthetic day, its simulation under the day's rules, and the books."""
