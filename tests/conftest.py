"""Shared pytest setup: a Hypothesis profile that keeps property tests to seconds.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (for a quiet machine or nightly CI).
"""

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings

# Hypothesis's files (its example database, a cache of source constants that names source paths) go outside the
# checkout unless the caller chose a place: a test run leaves the working tree as it found it.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "qama-rs-hypothesis"))

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
