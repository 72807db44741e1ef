"""Per-key rate limits shared by every worker and replica, kept in Redis.

Without ``GRADSERVE_REDIS_URL`` each worker process keeps its keys' token buckets in memory
(`service.ops.auth.TokenBucket`), so W workers in each of R replicas let a key make W x R times
its limit. With it, `SharedLimit` counts each key's requests in Redis through the `limits`
library's moving window (`limits.aio.strategies.MovingWindowRateLimiter`, one Lua script a
request, on redis-py's asyncio client): at most `per_minute` requests in any 60 seconds,
whichever process serves them. A refused request's wait is the time until the oldest request of
the window leaves it. Redis keys hold a key's SHA-256 digest, never the key.

Each round trip is bounded by `timeout` seconds and never blocks the event loop. When Redis
cannot answer (refused, timed out, any Redis error) `take` answers `None`: the error is counted
in `errors`, a warning logged when Redis goes away and again when it is back, and for
`RETRY_SECONDS` no request waits on Redis again (a silent Redis costs each worker one timeout a
second, not one a request). The caller then falls back to the process's own bucket (fail open,
the default) or refuses with a 503 (fail closed): `service.ops.auth.ApiKeys`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from service.settings import Settings

RETRY_SECONDS = 1.0
"""After Redis failed to answer, how long requests go without asking it again."""

KEY_PREFIX = "gradserve"
NAMESPACE = "key"
"""Redis keys are ``gradserve:key/<digest>/<limit>/1/minute``."""

logger = logging.getLogger(__name__)


class SharedLimit:
    """Each key's `per_minute` requests in any minute, counted in the Redis at `url`.

    `fail_open`: whether a request that Redis cannot count falls back to the process's own
    limit (True) or is refused (False); `clock` is monotonic seconds, for `RETRY_SECONDS`.
    """

    def __init__(
        self,
        url: str,
        per_minute: int,
        timeout: float,
        fail_open: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = ConnectionPool.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        self.storage = RedisStorage(
            "async+redis://",  # the pool's URL is the one used
            implementation="redispy",
            # A documented option, which limits types as float | str | bool like the others.
            connection_pool=self.pool,  # type: ignore[arg-type]
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.item = RateLimitItemPerMinute(per_minute, namespace=NAMESPACE)
        self.per_minute = per_minute
        self.timeout = timeout
        self.fail_open = fail_open
        self.clock = clock
        self.errors = 0
        self.reachable = True
        self.retry_at = 0.0

    def __repr__(self) -> str:  # never the URL: it may hold a password
        mode = "open" if self.fail_open else "closed"
        return f"SharedLimit({self.per_minute}/min, fails {mode})"

    @property
    def retry_after(self) -> float:
        """Seconds until Redis is asked again (0.0 when it is not taken as unreachable)."""
        return 0.0 if self.reachable else max(0.0, self.retry_at - self.clock())

    async def take(self, identity: str) -> float | None:
        """Count a request of `identity`: 0.0 if it may go, else the seconds until it may;
        None if Redis cannot answer now."""
        if not self.reachable and self.clock() < self.retry_at:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                if await self.limiter.hit(self.item, identity):
                    wait = 0.0
                else:
                    stats = await self.limiter.get_window_stats(self.item, identity)
                    wait = max(stats.reset_time - time.time(), 0.001)
        except (StorageError, TimeoutError, OSError) as error:
            self.failed(error)
            return None
        if not self.reachable:
            self.reachable = True
            logger.warning("Redis answers again: rate limits are shared again")
        return wait

    async def close(self) -> None:
        """Close the connections to Redis (at the app's shutdown)."""
        await self.pool.aclose()

    def failed(self, error: BaseException) -> None:
        self.errors += 1
        self.retry_at = self.clock() + RETRY_SECONDS
        if self.reachable:
            self.reachable = False
            cause = error.__cause__ or error
            logger.warning(
                "Redis cannot be reached (%s: %s): rate limits %s until it answers",
                type(cause).__name__,
                cause,
                "are each process's own" if self.fail_open else "refuse every request (503)",
            )


def closing(shared: SharedLimit | None) -> Callable[[object], AbstractAsyncContextManager[None]]:
    """A lifespan for the app that closes `shared`'s connections when the app shuts down."""

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if shared:
                await shared.close()

    return lifespan


def shared_limit(settings: Settings) -> SharedLimit | None:
    """The shared limit of `settings`: None where there is nothing to share, that is without
    keys, without a rate limit or without a Redis URL (then each process limits alone)."""
    if not (settings.redis_url and settings.api_keys and settings.rate_limit_per_minute):
        return None
    return SharedLimit(
        settings.redis_url,
        settings.rate_limit_per_minute,
        timeout=settings.redis_timeout_seconds,
        fail_open=settings.redis_fail_open,
    )
