"""Hypothesis runs derandomized (examples derived from each test, no example database), so a clean clone on CI
draws the same examples as the run before it: a property failure is reproducible, not luck of the draw.
``KOE_HYPOTHESIS=explore`` draws fresh random examples (and more of them) to hunt for new counter-examples."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("koe", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile("explore" if os.environ.get("KOE_HYPOTHESIS") == "explore" else "koe")
