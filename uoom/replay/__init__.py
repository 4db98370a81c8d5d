"""Replaying a day of orders under a dispatch policy: the day model, the simulation (trips, joins,
moves with fees), the books checked from its records, and the policies. Pure: no adapter, no UI."""
