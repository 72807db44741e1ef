"""The client of the benchmarks' large requests: keep-alive HTTP/1.1 by the standard library's
`http.client`, one connection per server.

It sends a body and reads an answer whole with little beyond the copies. The client's own time
is in every end-to-end figure, the baselines' included, so a slow one would flatter each ratio:
httpx took 1.9 s to post 129 MB and read 171 MB from `bench.floor_app` where this takes 0.55 s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """An answer read whole."""

    status: int
    reason: str
    content_type: str
    content: bytes

    def refusal(self) -> str:
        """The answer in a line, for a figure that cannot be measured: status, reason, media
        type, and the problem's detail (or the start of the body)."""
        said = self.content[:120].decode(errors="replace")
        if "json" in self.content_type:
            with contextlib.suppress(ValueError, AttributeError):
                said = str(json.loads(self.content).get("detail", said))
        return f"{self.status} {self.reason} ({self.content_type or 'no Content-Type'}): {said}"


class Client:
    """Requests over one keep-alive connection per server, each timed from sending to having
    read the whole answer. A reused connection the server has closed is opened again, once."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[float, Answer]:
        """Seconds from sending `body` to having read the whole answer, and the answer."""
        return self.request("POST", url, body, headers)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[float, Answer]:
        parts = urlsplit(url)
        for attempt in range(2):
            reused = parts.netloc in self._connections
            connection = self._connections.get(parts.netloc) or http.client.HTTPConnection(
                parts.netloc, timeout=self.timeout
            )
            self._connections[parts.netloc] = connection
            start = time.perf_counter()
            try:
                connection.request(method, parts.path or "/", body=body, headers=headers or {})
                response = connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self._drop(parts.netloc)
                if reused and attempt == 0:
                    continue
                raise
            except Exception:
                self._drop(parts.netloc)
                raise
            seconds = time.perf_counter() - start
            if response.will_close:
                self._drop(parts.netloc)
            kind = response.getheader("content-type", "")
            return seconds, Answer(response.status, response.reason, kind, content)
        raise AssertionError("unreachable")

    def _drop(self, netloc: str) -> None:
        connection = self._connections.pop(netloc, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for netloc in list(self._connections):
            self._drop(netloc)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
