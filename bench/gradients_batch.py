"""Batched gradients: 1,000 tiny problems in one /v1/gradients/batch request, beside the same
problems sent one /v1/gradients request each, against a real `gradserve serve` on loopback.

Run with `make bench` (or `.venv/bin/python -m bench.gradients_batch`). Prints medians of
several repetitions; no figure here is a pass/fail threshold.
"""

from __future__ import annotations

import httpx
import numpy as np
import orjson

from bench.timing import median_seconds, print_batch_beside_singles
from tests.support.server import running_server

PROBLEMS = 1000
SHAPE = {"N": 8, "D_in": 4, "H": 16, "D_out": 3}
"""The tiny size of the performance targets."""


def problems() -> list[dict[str, list[list[float]]]]:
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = SHAPE.values()
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return [
        {name: rng.standard_normal(shape).tolist() for name, shape in shapes.items()}
        for _ in range(PROBLEMS)
    ]


def main() -> None:
    bodies = problems()
    batch_body = orjson.dumps({"problems": bodies})  # encoded once: the client's time is not
    single_bodies = [orjson.dumps(body) for body in bodies]  # the service's
    headers = {"Content-Type": "application/json"}
    settings = {"GRADSERVE_ACCESS_LOG": "false"}
    with running_server(env=settings) as server, httpx.Client(base_url=server.url) as client:

        def batch() -> None:
            client.post(
                "/v1/gradients/batch", content=batch_body, headers=headers
            ).raise_for_status()

        def one_by_one() -> None:
            for body in single_bodies:
                client.post("/v1/gradients", content=body, headers=headers).raise_for_status()

        batch_time = median_seconds(batch)
        single_time = median_seconds(one_by_one)
    print_batch_beside_singles(
        f"Batched gradients, {PROBLEMS} problems of {SHAPE}",
        PROBLEMS,
        ("one /v1/gradients/batch request", batch_time),
        ("1,000 /v1/gradients requests", single_time),
    )


if __name__ == "__main__":
    main()
