"""The original's random_erasing.py, importable as before: ``from random_erasing import
RandomErasing``. The transform lives in :mod:`streid.transforms`."""

from streid.transforms import RandomErasing  # noqa: F401 (re-exported)
