"""Shared test settings: hypothesis runs the same examples on every machine (a CI result does
not depend on luck); ``HYPOTHESIS_PROFILE=explore`` searches more widely, with new examples.
No test downloads: torch hub's downloader fails in every test as it does offline."""

import os
import sys
from urllib.error import URLError

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def offline(url, dst, hash_prefix=None, progress=True):
    """``torch.hub.download_url_to_file`` on a machine without a network."""
    raise URLError(OSError(-3, "Temporary failure in name resolution"))


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    # torch is imported by the test modules (collected before any test runs) or not at all;
    # importing it here would slow every test run that does not need it.
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        monkeypatch.setattr(hub, "download_url_to_file", offline)
