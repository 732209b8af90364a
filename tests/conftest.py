"""Shared pytest setup: a Hypothesis profile that keeps property tests to seconds.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (for a quiet machine or nightly CI).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "qama",
    max_examples=40,
    deadline=None,  # the first call of an example may build thread pools; timing is not under test
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # same examples every run: a failure reproduces
)
settings.register_profile(
    "thorough", parent=settings.get_profile("qama"), max_examples=1000, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "qama"))
