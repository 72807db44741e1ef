"""The transport floor of `bench.requests`: a bare ASGI app, no framework, that reads the whole
request body and answers bytes built beforehand.

The answer is `X-Answer-Bytes` bytes long (0 without the header), sent as `X-Answer-Type`
(application/octet-stream without it) with its Content-Length: the benchmark asks for exactly
the size of gradserve's answer, so this app moves the same bytes both ways as gradserve and does
nothing else. Each size's bytes are built once and reused, and sent in CHUNK_BYTES slices, the
quickest way through uvicorn: one 86 MB message took twice as long, as asyncio copies whatever
the socket does not take at once. Served by `service.cli.serve`, as gradserve is (`bench.servers`).
"""

from __future__ import annotations

from typing import Any

ANSWERS: dict[int, memoryview] = {}
"""The answer of each size asked for so far."""
CHUNK_BYTES = 1024 * 1024


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body (joined, as a framework does), then answer the bytes asked for."""
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    b"".join(chunks)  # the whole body in one buffer, as a parser needs it
    headers = dict(scope["headers"])
    size = int(headers.get(b"x-answer-bytes", b"0"))
    answer = ANSWERS.get(size)
    if answer is None:
        answer = ANSWERS[size] = memoryview(bytes(size))
    media_type = headers.get(b"x-answer-type", b"application/octet-stream")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", media_type), (b"content-length", b"%d" % size)],
        }
    )
    for start in range(0, size, CHUNK_BYTES):
        end = start + CHUNK_BYTES
        await send(
            {"type": "http.response.body", "body": answer[start:end], "more_body": end < size}
        )
    if size == 0:
        await send({"type": "http.response.body", "body": b""})
