"""The dashboard's screens over the panels: help, the weights modal, the dead letters and their
confirmation."""
