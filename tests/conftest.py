"""Shared test settings: hypothesis runs the same examples on every machine (a CI result does
not depend on luck); ``HYPOTHESIS_PROFILE=explore`` searches more widely, with new examples."""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
