"""Every limit and switch of the service, in one object read from `GRADSERVE_*` variables.

The README's settings table lists them with their defaults; `create_app(settings)` takes one
so that tests can set any of them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Annotated, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Role = Literal["compute", "grade", "instructor"]
ROLES: tuple[Role, ...] = get_args(Role)
"""compute: /v1/gradients; grade: /v1/problems and /v1/grade (never reference values);
instructor: everything, revealing reference values included."""

BODIES_IN_FLIGHT = 4
"""Bodies of the largest size a worker reads or holds at once by default
(`Settings.body_bytes_in_flight`): enough for the computation slots of a 2-core worker and two
uploads waiting for them."""


ANY_ORIGIN = "*"


def web_origin(origin: str) -> str:
    """`origin` as a browser sends it in ``Origin``, ``scheme://host[:port]`` in lower case, or
    `ANY_ORIGIN`; a path, even a lone trailing slash, would never match, so it is refused."""
    if origin == ANY_ORIGIN:
        return origin
    parts = urlsplit(origin)
    if not (parts.scheme and parts.netloc) or parts.path or parts.query or parts.fragment:
        raise ValueError(
            f"{origin!r} is not an origin: give scheme://host[:port], as in "
            "https://course.example.edu or http://127.0.0.1:5173, with no path or trailing slash"
        )
    return origin.lower()


def any_origin_alone(origins: list[str]) -> list[str]:
    """`ANY_ORIGIN` already allows every origin: listed beside others, it is a mistake."""
    if ANY_ORIGIN in origins and len(origins) > 1:
        raise ValueError(f"{ANY_ORIGIN} allows every origin: list it alone or not at all")
    return origins


REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_location(url: str) -> str:
    """`url` as Redis's clients take it, or empty; the error never quotes it (a password)."""
    scheme = urlsplit(url).scheme
    if url and scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"the Redis URL's scheme is {scheme!r}; give redis://[:password@]host[:port][/db], "
            "rediss:// (TLS) or unix:///path/to/socket"
        )
    return url


RedisUrl = Annotated[str, AfterValidator(redis_location)]
"""A Redis URL, or empty (`Settings.redis_url`)."""

WebOrigins = Annotated[
    list[Annotated[str, AfterValidator(web_origin)]], NoDecode, AfterValidator(any_origin_alone)
]
"""Origins of web pages, read from comma-separated text or a JSON list (`Settings.cors_origins`)."""


class Settings(BaseSettings):
    """The service's settings; each is read from ``GRADSERVE_<NAME>``, e.g. GRADSERVE_PORT."""

    model_config = SettingsConfigDict(
        env_prefix="GRADSERVE_", extra="forbid", hide_input_in_errors=True
    )

    host: str = Field(default="127.0.0.1", description="Address `gradserve serve` binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `gradserve serve` binds.")
    workers: int = Field(default=1, ge=1, description="Worker processes of `gradserve serve`.")
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Largest request body accepted (413 beyond)."
    )
    max_input_elements: int = Field(
        default=8_000_000, ge=1, description="Most matrix entries in one request, all counted."
    )
    max_intermediate_elements: int = Field(
        default=32_000_000, ge=1, description="Most entries of the largest intermediate (N x H)."
    )
    max_flops: int = Field(
        default=200_000_000_000, ge=1, description="Most floating-point operations per request."
    )
    max_answer_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Largest answer a request may ask for, estimated from its shapes before any "
        "work (413 beyond).",
    )
    max_concurrent_computations: int | None = Field(
        default=None,
        ge=1,
        description="Computations at once per worker; default: the cores per worker.",
    )
    max_waiting_computations: int = Field(
        default=32, ge=0, description="Requests that may wait for a computation; 503 beyond."
    )
    retry_after_seconds: int = Field(
        default=1, ge=0, description="The Retry-After of a 503 when the service is overloaded."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time allowed to receive a request body; 408 beyond."
    )
    shutdown_grace_seconds: int = Field(
        default=30, ge=0, description="On SIGTERM, seconds allowed for requests in flight."
    )
    blas_threads: int | None = Field(
        default=None, ge=1, description="BLAS threads per worker; default: the cores per worker."
    )
    api_keys: dict[str, Role] = Field(
        default_factory=dict,
        repr=False,
        description='API key -> role, as JSON ({"key": "grade"}); empty: no keys needed.',
    )
    rate_limit_per_minute: int = Field(
        default=0, ge=0, description="Requests per minute per API key; 0: no limit."
    )
    allow_reveal: bool = Field(
        default=False, description="Whether /v1/grade may answer reference values when asked."
    )
    cors_origins: WebOrigins = Field(
        default_factory=list,
        description="Origins of the web pages that may call the service from a browser (CORS), "
        'comma-separated or as a JSON list (["https://course.example.edu"]), or * for any; '
        "empty: none.",
    )
    redis_url: RedisUrl = Field(
        default="",
        repr=False,
        description="Redis that keeps each API key's rate limit for every worker and replica "
        "at once (redis://host:6379/0); empty: each worker process keeps its own.",
    )
    redis_timeout_seconds: float = Field(
        default=0.25,
        gt=0,
        description="Time allowed for one rate-limit round trip to Redis; beyond, Redis is "
        "taken as unreachable.",
    )
    redis_fail_open: bool = Field(
        default=True,
        description="Where Redis is unreachable: true, each worker process limits each key "
        "alone (as without Redis); false, 503 with Retry-After to every request with a key.",
    )
    access_log: bool = Field(default=True, description="JSON access log lines on stdout.")
    max_body_bytes_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="Bytes of request bodies a worker reads or holds at once, each counted from "
        "its Content-Length (a chunked body: max_body_bytes) before it is read; 503 beyond. "
        "Default: 4 x max_body_bytes.",
    )
    send_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Time a client may take to accept each slice of an answer; beyond, the "
        "connection is closed.",
    )
    learn_solve: bool = Field(
        default=True,
        description="Whether the page for learners (/learn) offers to solve a problem step by "
        "step (with /v1/gradients).",
    )
    learn_check: bool = Field(
        default=True,
        description="Whether the page for learners (/learn) offers to check a student's answers "
        "(with /v1/grade). With both off, there is no page.",
    )
    failed_auth_per_minute: int = Field(
        default=60,
        ge=0,
        description="Failed authentications (no API key, or an unknown one) a minute per client "
        "address, where keys are configured; beyond, 429. 0: no limit.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def keys_are_usable(cls, keys: object) -> object:
        """Roles must be known and keys non-empty without surrounding spaces; errors never
        name a key (they end up in logs)."""
        if isinstance(keys, dict):
            for key, role in keys.items():
                if role not in ROLES:
                    raise ValueError(f"a key has the role {role!r}; roles are {', '.join(ROLES)}")
                if not isinstance(key, str) or not key or key != key.strip():
                    raise ValueError("a key is empty or has spaces around it")
        return keys

    @field_validator("cors_origins", mode="before")
    @classmethod
    def origins_from_text(cls, origins: object) -> object:
        """Text is a JSON list if it starts with "[", else origins separated by commas."""
        if not isinstance(origins, str):
            return origins
        if origins.lstrip().startswith("["):
            try:
                return json.loads(origins)
            except ValueError as error:
                raise ValueError(f"starts with [ but is not a JSON list: {error}") from None
        return [origin.strip() for origin in origins.split(",") if origin.strip()]

    @property
    def cores_per_worker(self) -> int:
        """The cores this process may run on (its CPU affinity, so a cpuset limit counts; a
        CFS quota does not: set the counts explicitly in a CPU-limited container), shared
        among the workers."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return max(1, (cores or os.cpu_count() or 1) // self.workers)

    @model_validator(mode="after")
    def a_whole_body_fits_in_flight(self) -> Self:
        """A body of `max_body_bytes` must fit in the bytes in flight, or it is never read."""
        if self.body_bytes_in_flight < self.max_body_bytes:
            raise ValueError(
                f"max_body_bytes_in_flight ({self.max_body_bytes_in_flight}) is below "
                f"max_body_bytes ({self.max_body_bytes}): no body of the largest size could be read"
            )
        return self

    @property
    def body_bytes_in_flight(self) -> int:
        """`max_body_bytes_in_flight`, or by default BODIES_IN_FLIGHT bodies of `max_body_bytes`."""
        if self.max_body_bytes_in_flight is not None:
            return self.max_body_bytes_in_flight
        return BODIES_IN_FLIGHT * max(1, self.max_body_bytes)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
