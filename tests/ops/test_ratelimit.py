"""The rate limit shared in Redis: when it applies, that two apps share one key's limit, and what
happens when Redis does not answer (fail open to each process's bucket, or closed with 503)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import ASGIApp

from service.api import examples
from service.app import create_app
from service.ops import ratelimit
from service.ops.auth import ApiKeys, digest
from service.ops.ratelimit import SharedLimit, shared_limit
from service.settings import Role, Settings
from tests.support.redis import RedisServer
from tests.support.server import free_port

pytestmark = pytest.mark.anyio

KEY = "key-grade-0c5d1e9a"
KEYS: dict[str, Role] = {KEY: "compute"}
PROBLEM_JSON = "application/problem+json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def nowhere() -> str:
    """A Redis URL where nothing listens: every connection is refused."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A Redis URL whose port accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def call(app: ASGIApp) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as client:
        return await client.post(
            "/v1/gradients", json=examples.REQUEST, headers={"Authorization": f"Bearer {KEY}"}
        )


async def statuses(app: ASGIApp, count: int) -> list[int]:
    return [(await call(app)).status_code for _ in range(count)]


class TestWhichLimit:
    """`shared_limit` gives a `SharedLimit` only where there is a limit to share."""

    @pytest.mark.parametrize(
        "settings",
        [
            pytest.param(Settings(api_keys=KEYS, rate_limit_per_minute=5), id="no-redis-url"),
            pytest.param(Settings(api_keys=KEYS, redis_url=nowhere()), id="no-rate-limit"),
            pytest.param(Settings(rate_limit_per_minute=5, redis_url=nowhere()), id="no-keys"),
        ],
    )
    def test_each_process_alone(self, settings: Settings) -> None:
        assert shared_limit(settings) is None

    async def test_redis_where_all_three_are_set(self) -> None:
        settings = Settings(
            api_keys=KEYS,
            rate_limit_per_minute=5,
            redis_url="redis://:s3cret-pass@127.0.0.1:6390/2",
            redis_timeout_seconds=0.5,
            redis_fail_open=False,
        )
        shared = shared_limit(settings)
        assert shared is not None
        assert (shared.per_minute, shared.timeout, shared.fail_open) == (5, 0.5, False)
        assert shared.pool.connection_kwargs["port"] == 6390
        assert shared.pool.connection_kwargs["db"] == 2
        assert "s3cret" not in repr(shared)
        assert "s3cret" not in repr(settings)
        await shared.close()

    def test_the_defaults_fail_open_within_a_quarter_second(self) -> None:
        settings = Settings()
        assert (settings.redis_url, settings.redis_fail_open) == ("", True)
        assert settings.redis_timeout_seconds == 0.25

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("http://:s3cret@cache:6379", id="http"),
            pytest.param("cache:6379", id="no-scheme"),
            pytest.param("redis+unix://:s3cret@/run/redis.sock", id="limits-scheme"),
        ],
    )
    def test_only_redis_urls_and_errors_quote_none(self, url: str) -> None:
        with pytest.raises(ValidationError, match="Redis URL's scheme") as caught:
            Settings(redis_url=url)
        assert "s3cret" not in str(caught.value)

    @pytest.mark.parametrize("url", ["redis://cache:6379/0", "rediss://cache", "unix:///r.sock"])
    def test_redis_urls_accepted(self, url: str) -> None:
        assert Settings(redis_url=url).redis_url == url


class TestRedisUnreachable:
    """Refused connections: fail open falls back to the process's own bucket; fail closed
    answers 503 with Retry-After; either way a warning is logged once and errors counted."""

    def app(self, fail_open: bool, url: str | None = None) -> tuple[ApiKeys, SharedLimit]:
        shared = SharedLimit(url or nowhere(), 2, timeout=0.25, fail_open=fail_open)
        app = ApiKeys(create_app(Settings()), keys=KEYS, rate_limit_per_minute=2, shared=shared)
        return app, shared

    async def test_fail_open_keeps_the_process_limit(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app, shared = self.app(fail_open=True)
        with caplog.at_level(logging.WARNING, logger=ratelimit.__name__):
            assert await statuses(app, 3) == [200, 200, 429]
        warnings = [r.getMessage() for r in caplog.records if r.name == ratelimit.__name__]
        assert len(warnings) == 1, warnings
        assert "Redis cannot be reached" in warnings[0]
        assert "each process's own" in warnings[0]
        assert shared.errors == 1, "asked once, then not again for RETRY_SECONDS"
        await shared.close()

    async def test_fail_closed_refuses_with_503(self, caplog: pytest.LogCaptureFixture) -> None:
        app, shared = self.app(fail_open=False)
        with caplog.at_level(logging.WARNING, logger=ratelimit.__name__):
            answer = await call(app)
        assert answer.status_code == 503
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.headers["retry-after"] == "1"
        assert "rate limit cannot be counted" in answer.json()["detail"]
        assert "503" in caplog.text
        await shared.close()

    async def test_a_silent_redis_costs_one_timeout_then_none(self, silent_redis: str) -> None:
        app, shared = self.app(fail_open=True, url=silent_redis)
        shared.timeout = 0.2
        started = time.perf_counter()
        assert (await call(app)).status_code == 200
        first = time.perf_counter() - started
        started = time.perf_counter()
        assert (await call(app)).status_code == 200
        second = time.perf_counter() - started
        assert 0.2 <= first < 1.0, "bounded by the timeout"
        assert second < 0.15, "not asked again within RETRY_SECONDS"
        assert shared.errors == 1
        await shared.close()

    async def test_redis_is_asked_again_after_retry_seconds(self) -> None:
        clock = FakeClock()
        shared = SharedLimit(nowhere(), 2, timeout=0.25, clock=clock)
        assert await shared.take("k") is None
        assert await shared.take("k") is None
        assert shared.errors == 1
        assert shared.retry_after == ratelimit.RETRY_SECONDS
        clock.now += ratelimit.RETRY_SECONDS
        assert await shared.take("k") is None
        assert shared.errors == 2
        await shared.close()


@pytest.mark.slow
class TestWithRedis:
    """A real redis-server (tests.support.redis): two apps, as two processes would, hold one
    key to its limit together; Redis going away and coming back."""

    @pytest.fixture
    async def shared(self, redis_server: RedisServer) -> AsyncIterator[list[SharedLimit]]:
        made: list[SharedLimit] = []
        yield made
        for shared in made:
            await shared.close()

    def app(
        self, redis_server: RedisServer, made: list[SharedLimit], fail_open: bool = True
    ) -> ApiKeys:
        shared = SharedLimit(redis_server.url, 3, timeout=0.25, fail_open=fail_open)
        made.append(shared)
        return ApiKeys(create_app(Settings()), keys=KEYS, rate_limit_per_minute=3, shared=shared)

    async def test_two_apps_share_one_limit(
        self, redis_server: RedisServer, shared: list[SharedLimit]
    ) -> None:
        first, second = self.app(redis_server, shared), self.app(redis_server, shared)
        answers = [await call(app) for app in (first, second, first, second, first, second)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429]
        retry_after = int(answers[3].headers["retry-after"])
        assert 55 <= retry_after <= 60, "when the oldest request leaves the minute"
        keys = redis_server.command("KEYS", "*")
        assert keys == f"gradserve:key/{digest(KEY.encode()).hex()}/3/1/minute"
        assert KEY not in keys, "the key's digest, never the key"

    async def test_the_app_from_settings_uses_redis(self, redis_server: RedisServer) -> None:
        settings = Settings(api_keys=KEYS, rate_limit_per_minute=3, redis_url=redis_server.url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            assert await statuses(app, 2) == [200, 200]
            assert redis_server.command("LLEN", redis_server.command("KEYS", "*")) == "2"

    async def test_redis_going_away_and_coming_back(
        self, redis_server: RedisServer, shared: list[SharedLimit]
    ) -> None:
        app = self.app(redis_server, shared)
        limit = shared[0]
        clock = FakeClock()
        limit.clock = clock
        assert await statuses(app, 2) == [200, 200]
        redis_server.stop()
        assert await statuses(app, 4) == [200, 200, 200, 429], "each process's own bucket"
        assert not limit.reachable
        redis_server.start()  # empty: it saves nothing
        clock.now += ratelimit.RETRY_SECONDS
        assert await statuses(app, 4) == [200, 200, 200, 429], "Redis's count again"
        assert limit.reachable

    async def test_fail_closed_refuses_until_redis_is_back(
        self, redis_server: RedisServer, shared: list[SharedLimit]
    ) -> None:
        app = self.app(redis_server, shared, fail_open=False)
        clock = FakeClock()
        shared[0].clock = clock
        assert await statuses(app, 1) == [200]
        redis_server.stop()
        assert await statuses(app, 2) == [503, 503]
        redis_server.start()
        assert await statuses(app, 1) == [503], "not asked again within RETRY_SECONDS"
        clock.now += ratelimit.RETRY_SECONDS
        assert await statuses(app, 3) == [200, 200, 200]  # a new Redis: an empty window
