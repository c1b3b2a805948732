"""One BLAS thread around host-side numerical work that runs beside XLA.

scipy's and numpy's OpenBLAS keep their own thread pool; its threads spin-wait between
calls and fight XLA's (and scikit-learn's) threads for the cores. On the 2-core machines
this project is measured on, the small products and factorizations of one CV evaluation
(a few hundred columns) ran 3-10x slower with two BLAS threads than with one, and
erratically so on a loaded machine (a 300 x 300 Cholesky: 10 ms instead of 1 ms after a
coordinate-descent call). Large products keep the library's own setting.
"""

from __future__ import annotations

import contextlib

import numpy  # noqa: F401 - BLAS libraries loaded before the controller looks for them
import scipy.linalg  # noqa: F401
from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

# Built once, at import: it reads /proc/self/maps, which takes 10 ms in a quiet process
# but was measured at 0.27 s while XLA compiled in another thread (the kernel's
# map lock is contended by the compiler's allocations).
_CONTROLLER = ThreadpoolController()


def one_blas_thread(enabled=True):
    """Context manager limiting BLAS to one thread (a no-op when ``enabled`` is false).

    Entering the context costs microseconds (the controller is built at import).
    """
    if not enabled:
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")
