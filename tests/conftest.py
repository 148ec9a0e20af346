"""Shared test settings.

Property-based tests run derandomized (a fixed seed derived from each test) so
that CI and a developer see the same examples; set HYPOTHESIS_PROFILE=explore
for fresh random examples when hunting bugs locally.
"""
import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
