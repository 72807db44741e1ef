"""The floor of `bench.requests`' tiny rows: one `POST /empty` that reads the body and answers {}.

Served like gradserve, by `service.cli.serve` (`bench.servers`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/empty")
async def empty(request: Request) -> dict[str, str]:
    """Read the whole body, answer {}."""
    await request.body()
    return {}
