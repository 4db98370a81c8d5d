"""The `uoom` command line: daemons as top-level verbs, admin work grouped by noun."""

import os

# pydantic looks for plugins in every installed distribution's entry points when it builds its
# first model (30-60 ms here, a tenth of a short command); uoom uses none. An explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
