"""Prometheus metrics, one registry per app, served at ``GET /metrics``.

::

    gradserve_requests_total{route,method,status}        answers given
    gradserve_request_duration_seconds{route,method}     histogram, arrival to last byte out
    gradserve_compute_seconds{endpoint}                  histogram of the computation alone
    gradserve_rejections_total{reason}                   4xx and 5xx answers, by reason
    gradserve_requests_in_flight                         requests being answered now
    process_*                                            this process's CPU, memory, open files
    python_info{implementation,major,minor,patchlevel,version}    the Python running it

`route` is the template of the route the path matches ("/v1/grade",
"/static-offline-docs/{path}"), whichever piece of the app answered (a 401 from `ApiKeys`, a
413 from `BodySizeLimit`), and "unmatched" when no route matches it, so the label set stays small
whatever paths clients send (`service.ops.observability.route_template`). `method` is one of
`METHODS`, or "other".

Each app gets its own `CollectorRegistry`, so apps built side by side (as tests do) never share
counts; prometheus-client's `ProcessCollector` and `PlatformCollector` give the ``process_*``
metrics and ``python_info``. No metric has a ``_created`` series
(`prometheus_client.disable_created_metrics`, for the whole process): in the text format a
creation time is a series of its own for every label set, which Prometheus would store at every
scrape and use for nothing.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an existing, empty directory
before starting (empty it again before each start: values left there are added in): each worker
then writes its values there and ``/metrics``, whichever worker answers, adds up those of every
worker (`prometheus_client.multiprocess`). There are no ``process_*`` metrics then: each worker
is a process of its own, and the values of the one that happens to answer a scrape (its memory,
its CPU time, its start time) would jump from scrape to scrape, a counter seeming to reset each
time; prometheus-client cannot add them up. Read the memory and CPU of the whole container or pod
from the orchestrator instead (cAdvisor, the kubelet), or serve one worker per container, as the
image and the deployments do.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

Labelled = Counter | Histogram
"""A metric with labels."""

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The Prometheus text exposition format, which every Prometheus version scrapes."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Seconds: from a 1 x 1 problem (well under a millisecond) to the largest budgets allow."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REJECTION_REASONS = {
    400: "malformed_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "error",
    503: "overloaded",
}
"""The reason counted for each error status; any other 4xx is "other", any other 5xx "error".
A route may name another (`service.ops.observability`): /readyz counts its 503 as "not_ready"."""


def rejection_reason(status: int) -> str:
    """The `reason` label of an answer with this status (400 or over)."""
    return REJECTION_REASONS.get(status) or ("error" if status >= 500 else "other")


disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_mode() -> bool:
    """Whether prometheus-client keeps its values in files, for several worker processes."""
    return MULTIPROCESS_DIR_VARIABLE in os.environ


class Metrics:
    """The app's metrics and the registry holding them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "gradserve_requests",
            "Requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "gradserve_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.compute = Histogram(
            "gradserve_compute_seconds",
            "Time spent computing alone (no parsing, waiting or serializing), by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "gradserve_rejections",
            "Requests answered with a 4xx or 5xx status, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gradserve_requests_in_flight",
            "Requests being answered now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        for reason in sorted({*REJECTION_REASONS.values(), "other", "not_ready"}):
            self.rejections.labels(reason)  # present at 0 from the start, so rates are defined

    def observe(
        self, route: str, method: str, status: int, seconds: float, reason: str | None
    ) -> None:
        """Count one answer; `reason` overrides the rejection reason its status implies."""
        method = method if method in METHODS else "other"
        self.child(self.requests, route, method, str(status)).inc()
        self.child(self.duration, route, method).observe(seconds)
        if status >= 400:
            self.child(self.rejections, reason or rejection_reason(status)).inc()

    def child(self, metric: Labelled, *labels: str) -> Any:
        """`metric.labels(*labels)`, asked of prometheus-client once per label set and kept
        (docs/performance.md)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_compute(self, endpoint: str, seconds: float) -> None:
        """Record one computation's time (`service.api.timing.timed_compute` reports it)."""
        self.child(self.compute, endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in the text format: this app's and its process's, or in multiprocess
        mode every worker's, with ``python_info`` (the same in every worker)."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            PlatformCollector(registry=registry)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def process_exiting(self) -> None:
        """In multiprocess mode, drop this process's in-flight gauge from the sum."""
        if multiprocess_mode():
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
