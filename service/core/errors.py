"""Every error gradserve raises on purpose, in one tree.

::

    GradserveError
    ├── NonFiniteResultError     the loss or a gradient overflowed       (service.core.network)
    ├── BudgetExceededError      a request would cost more than allowed  (service.core.workload)
    ├── GenerationError          no problem instance meets the spec      (service.grading.generator)
    ├── ProblemIdError           a problem id this service did not issue (service.grading.generator)
    └── RefusedError             a request turned away before any work   (service.api, service.ops)
        ├── BodyTooLargeError    its body is over the size limit
        └── OverloadedError      every computation slot and waiting place is taken

Each error carries what its answer needs and nothing of HTTP: the API maps each class to one
RFC 9457 problem details object (`service.api.errors`, `service.api.handlers`), so the layers
below it raise these without knowing they will become a 413, a 422 or a 503.
"""

from __future__ import annotations

import numpy as np


class GradserveError(Exception):
    """The root of every error gradserve raises on purpose."""


class NonFiniteResultError(GradserveError, ArithmeticError):
    """The loss or a gradient overflowed to infinity or became NaN.

    `quantities` names each offender: ``"loss"``, a gradient's key (``"W1"``), or a forward
    intermediate prefixed ``"forward."`` (``"forward.Y_pred"``); `dtype` is the computation's.
    """

    def __init__(self, quantities: list[str], dtype: np.dtype[np.floating]) -> None:
        self.quantities = quantities
        self.dtype = dtype
        super().__init__(f"not finite in {dtype.name}: {', '.join(quantities)}")


class BudgetExceededError(GradserveError):
    """The request would cost more of `budget` than `limit` allows: `value`."""

    def __init__(self, budget: str, limit: int, value: int) -> None:
        self.budget = budget
        self.limit = limit
        self.value = value
        super().__init__(f"{budget}: {value} over the limit of {limit}")


class GenerationError(GradserveError, ValueError):
    """No attempt met the spec (e.g. zeros required of normal values); the message says why."""


class ProblemIdError(GradserveError, ValueError):
    """A problem id that this service did not issue, or that is damaged."""


class RefusedError(GradserveError):
    """A request turned away before any work was done on it; `detail` says why."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class BodyTooLargeError(RefusedError):
    """The request body is over `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"The request body is larger than the {limit} bytes this service accepts.")


class OverloadedError(RefusedError):
    """Every computation slot (`slots`) and every waiting place (`waiting`) is taken; the
    client should retry after `retry_after` seconds."""

    def __init__(self, slots: int, waiting: int, retry_after: int) -> None:
        self.slots = slots
        self.waiting = waiting
        self.retry_after = retry_after
        super().__init__(
            f"The service is at capacity ({slots} running, {waiting} waiting). "
            f"Retry after {retry_after} s."
        )
