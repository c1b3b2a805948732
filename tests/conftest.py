"""Shared pytest fixtures.

JAX defaults to float32. Tests that need float64 request the ``x64`` fixture, which enables
it for the duration of the test only (``with jax.enable_x64(True):``); nothing flips the
global configuration::

    pytestmark = pytest.mark.usefixtures("x64")      # a whole module

    @pytest.mark.usefixtures("x64")                   # one test
    def test_something(): ...
"""

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX types enabled (scoped, restored afterwards)."""
    with jax.enable_x64(True):
        yield
