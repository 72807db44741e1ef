"""A Python client of gradserve: the exact loss and five gradients of a two-layer ReLU network,
and the grading of students' hand-derived ones.

``Client`` (synchronous) and ``AsyncClient`` (asyncio) have the same methods: `gradients`,
`gradients_many`, `gradients_batch`, `create_problem`, `grade`, `grade_batch`, `health` and the
generic `request`. Results are frozen dataclasses holding NumPy arrays (`GradientsResult`,
`GeneratedProblem`, `Grade`, `GradeBatch`, and the autograders' `GradescopeResult` and
`PrairieLearnResult`); errors are the exceptions drawn in `gradserve_client._exceptions`.
"""

from gradserve_client._async_client import AsyncClient
from gradserve_client._client import Client
from gradserve_client._config import RetryPolicy
from gradserve_client._exceptions import (
    ClientError,
    FieldError,
    GradserveConnectError,
    GradserveError,
    GradserveTimeoutError,
    ProblemError,
    ServerError,
    TransportError,
    ValidationError,
)
from gradserve_client._grading import (
    Diagnosis,
    GeneratedProblem,
    Grade,
    GradeBatch,
    GradescopeResult,
    GradescopeTest,
    PrairieLearnResult,
    PrairieLearnTest,
    ProblemSpec,
    QuantityGrade,
    ReferenceAnswers,
    Tolerance,
    UngradablePrairieLearnResult,
)
from gradserve_client._models import Forward, Gradients, GradientsResult, Shapes
from gradserve_client._version import __version__

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "Diagnosis",
    "FieldError",
    "Forward",
    "GeneratedProblem",
    "Grade",
    "GradeBatch",
    "GradescopeResult",
    "GradescopeTest",
    "Gradients",
    "GradientsResult",
    "GradserveConnectError",
    "GradserveError",
    "GradserveTimeoutError",
    "PrairieLearnResult",
    "PrairieLearnTest",
    "ProblemError",
    "ProblemSpec",
    "QuantityGrade",
    "ReferenceAnswers",
    "RetryPolicy",
    "ServerError",
    "Shapes",
    "Tolerance",
    "TransportError",
    "UngradablePrairieLearnResult",
    "ValidationError",
    "__version__",
]
