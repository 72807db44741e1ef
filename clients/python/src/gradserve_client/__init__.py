"""A Python client of gradserve: the exact loss and five gradients of a two-layer ReLU network.

``Client`` (synchronous) and ``AsyncClient`` (asyncio) have the same methods: `gradients`,
`gradients_many`, `health` and the generic `request`. Results are `GradientsResult`s holding
NumPy arrays; errors are the exceptions drawn in `gradserve_client._exceptions`.
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
from gradserve_client._models import Forward, Gradients, GradientsResult, Shapes
from gradserve_client._version import __version__

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "FieldError",
    "Forward",
    "Gradients",
    "GradientsResult",
    "GradserveConnectError",
    "GradserveError",
    "GradserveTimeoutError",
    "ProblemError",
    "RetryPolicy",
    "ServerError",
    "Shapes",
    "TransportError",
    "ValidationError",
    "__version__",
]
