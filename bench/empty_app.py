"""The floor for `bench.requests`: one `POST /empty` that reads the body and answers {}.

Served like gradserve, by uvicorn in one process without an access log:
`python -m uvicorn bench.empty_app:app --port P --no-access-log`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/empty")
async def empty(request: Request) -> dict[str, str]:
    """Read the whole body, answer {}."""
    await request.body()
    return {}
