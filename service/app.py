"""The ASGI app: `service.app:app`, built by `create_app` from the settings.

The app holds the routes of `service.api.routes` and `service.ops.observability`, one problem
details handler per kind of error (`service.api.handlers`), and this middleware, outermost
first: `Observability` (request ids, metrics, access log), Starlette's `CORSMiddleware` where
origins are allowed (`service.ops.cors`), `GracefulShutdown` (the queue refused at once on
SIGTERM, a 503 for work cut short), `ReturnMemory` (free memory returned to the system after
large requests), `ApiKeys`, `BodySizeLimit`, `FastLane`; then FastAPI's exception
middleware and router. Its lifespan marks it started and stopping, for /readyz; its OpenAPI
document declares the API key schemes.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from service import __version__
from service.api.admission import BodyBudget, ComputeLimiter, ParseBudget
from service.api.fast_lane import FastLane
from service.api.grading_schemas import (
    GeneratedProblem,
    GradeBatchOut,
    GradeBatchRequest,
    GradeOut,
    GradeRequest,
    GradescopeResult,
    PrairieLearnResult,
    ProblemRef,
    ProblemSpec,
    UngradablePrairieLearnResult,
)
from service.api.handlers import install_problem_handlers
from service.api.openapi import openapi_schema
from service.api.routes import batch, front_door, gradients, learn
from service.api.routes.grading import router as grade_router
from service.api.schemas import (
    GradientsBatchRequest,
    GradientsBatchResponse,
    GradientsRequest,
    GradientsResponse,
    ProblemMatrices,
)
from service.ops.auth import ApiKeys, with_security
from service.ops.cors import add_cors
from service.ops.limits import BodySizeLimit
from service.ops.logs import configure_logging
from service.ops.memory import MemoryTrimmer, ReturnMemory, malloc_trim
from service.ops.observability import install_observability, readiness_lifespan
from service.ops.ratelimit import closing, shared_limit
from service.ops.shutdown import GracefulShutdown
from service.settings import Settings, get_settings

DESCRIPTION = """\
Loss and gradients of a two-layer ReLU network without biases:

    X: N x D_in    W1: D_in x H    W2: H x D_out    Y: N x D_out
    H = X W1,   H_relu = max(H, 0),   Y_pred = H_relu W2,   loss = ||Y_pred - Y||_F^2

`POST /v1/gradients` answers the loss and dloss/dK for K in Y_pred, W2, H_relu, H, W1, each with
K's shape; `/v1/problems` and `/v1/grade` make exercises and grade students' answers. Every error
is an RFC 9457 problem details object (`application/problem+json`).

## The derivation

The gradients follow from matrix differentials: write d(loss) = tr(G^T dK), then G is dloss/dK.

1. d(loss) = tr(2 (Y_pred - Y)^T dY_pred), so **dloss/dY_pred = 2 (Y_pred - Y)**.
2. With H_relu fixed, dY_pred = H_relu dW2, so d(loss) = tr((dloss/dY_pred)^T H_relu dW2)
   = tr((H_relu^T dloss/dY_pred)^T dW2): **dloss/dW2 = H_relu^T dloss/dY_pred**. (This is the
   gradient with respect to W2. A common slip labels this result dloss/dH_relu.)
3. With W2 fixed, dY_pred = dH_relu W2, so d(loss) = tr((dloss/dY_pred)^T dH_relu W2)
   = tr((dloss/dY_pred W2^T)^T dH_relu): **dloss/dH_relu = dloss/dY_pred W2^T**.
4. H_relu = max(H, 0) acts entrywise: where H > 0, dH_relu = dH; where H <= 0, H_relu = 0 and
   dH_relu = 0. So **dloss/dH = dloss/dH_relu * [H > 0]** (entrywise), 0 wherever H <= 0.
5. dH = X dW1, so d(loss) = tr((dloss/dH)^T X dW1) = tr((X^T dloss/dH)^T dW1):
   **dloss/dW1 = X^T dloss/dH**.

max(H, 0) has no derivative at H = 0; gradserve takes it as 0 there, as in step 4: dloss/dH is 0
wherever H <= 0, including H == 0 exactly (the convention of PyTorch's `relu`).
"""


INPUTS: list[type[BaseModel]] = [
    GradientsRequest,
    GradientsBatchRequest,
    ProblemSpec,
    GradeRequest,
    GradeBatchRequest,
    ProblemMatrices,
    ProblemRef,
]
"""The request bodies, which the routes read themselves (`service.api.body`)."""

OUTPUTS: list[type[BaseModel]] = [
    GradientsResponse,
    GradientsBatchResponse,
    GeneratedProblem,
    GradeOut,
    GradescopeResult,
    PrairieLearnResult,
    UngradablePrairieLearnResult,
    GradeBatchOut,
]
"""The answers' models."""

SERVERS = [{"url": "/", "description": "The server that serves this document."}]
LICENSE = {"name": "MIT", "identifier": "MIT"}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` defaults to those read from the environment.

    ``add_middleware`` puts each middleware outside those added before it: they are added
    innermost first, `install_observability` last.
    """
    settings = settings or get_settings()
    shared = shared_limit(settings)  # each key's rate limit, in Redis where one is configured
    app = FastAPIOffline(
        title="gradserve",
        version=__version__,
        summary="Exact loss and gradients of a two-layer ReLU network, over HTTP.",
        description=DESCRIPTION,
        servers=SERVERS,
        license_info=LICENSE,
        redirect_slashes=False,
        lifespan=readiness_lifespan(closing(shared)),
    )
    app.state.settings = settings
    app.state.limiter = limiter = ComputeLimiter(
        slots=settings.max_concurrent_computations or settings.cores_per_worker,
        waiting=settings.max_waiting_computations,
        retry_after=settings.retry_after_seconds,
    )
    app.state.body_budget = BodyBudget(settings.body_bytes_in_flight, settings.retry_after_seconds)
    app.state.parse_budget = ParseBudget(settings.max_body_bytes)
    lane_routes = [*gradients.lane_router.routes, *batch.lane_router.routes]
    app.add_middleware(FastLane, routes=lane_routes)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ApiKeys,
        keys=settings.api_keys,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        failed_auth_per_minute=settings.failed_auth_per_minute,
        shared=shared,
    )
    # Counts the bytes of every body and answer, refusals by ApiKeys and BodySizeLimit included.
    app.add_middleware(ReturnMemory, trimmer=MemoryTrimmer(malloc_trim()))
    # Outside every other piece of the app, so that work cancelled anywhere in it is answered;
    # inside Observability, so that the answer has its request id and is counted and logged.
    app.add_middleware(
        GracefulShutdown, on_exit=limiter.close, retry_after=settings.retry_after_seconds
    )
    # Outside every refusal, so that a page on an allowed origin can read each one, and outside
    # ApiKeys, so that a preflight needs no key; inside Observability, so that a preflight has
    # a request id and is counted and logged.
    add_cors(app, settings.cors_origins)
    install_observability(app, settings)  # added last: the outermost middleware
    app.state.readiness_checks.append(lambda: "overloaded" if limiter.full else None)
    threadpool_limits(limits=settings.blas_threads or settings.cores_per_worker)
    for module_router in (
        gradients.lane_router,
        batch.lane_router,
        gradients.router,
        grade_router,
        front_door.router,
        learn.router,
    ):
        # Added as the app's own routes, not as included routers, which FastAPI matches more
        # slowly (docs/performance.md).
        app.router.routes.extend(module_router.routes)
    install_problem_handlers(app)
    # FastAPI's documented way to extend the OpenAPI document: replace `app.openapi`.
    app.openapi = with_security(partial(openapi_schema, app, INPUTS, OUTPUTS))  # type: ignore[method-assign]
    return app


configure_logging()  # before the app exists: the same JSON lines, served by uvicorn or gradserve
app = create_app()
