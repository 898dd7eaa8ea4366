"""Fixtures of the architecture tests."""

from ._offline import no_network  # noqa: F401  (a fixture, found by pytest here)
