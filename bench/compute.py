"""The NumPy core beside the machine's practical limit: `loss_and_gradients` at three sizes,
each beside ONE square matmul doing the same number of floating-point operations.

The core's operations: the forward pass does X W1 (2 N D_in H) and H_relu W2 (2 N H D_out); the
backward pass does dY_pred W2^T and H_relu^T dY_pred (2 N H D_out each) and X^T dH (2 N D_in H),
so flops = 4 N D_in H + 6 N H D_out (the elementwise work is left out). The baseline is a
matmul of two n x n matrices, 2 n^3 flops, with n = round((flops / 2) ** (1/3)): the same work
in the one shape BLAS runs best, so the ratio says how far the core is from what this machine's
BLAS can do. Inputs are float64, as the service hands them to the core; the matmul runs in the
core's dtype.

Run with `.venv/bin/python -m bench.compute`. Prints medians of several interleaved samples,
the BLAS and threads threadpoolctl sees, and torch autograd for the same problem when torch is
importable. No figure here is a pass/fail threshold.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

from service.network import loss_and_gradients

SAMPLES = 7
SAMPLE_SECONDS = 0.2
"""Each sample repeats the call until it has run at least this long, then times one call."""

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"N": 8, "D_in": 4, "H": 16, "D_out": 3},
    "medium": {"N": 256, "D_in": 128, "H": 256, "D_out": 32},
    "large": {"N": 4096, "D_in": 1024, "H": 1024, "D_out": 256},
}
CASES = (
    ("tiny", np.float64),
    ("medium", np.float64),
    ("large", np.float64),
    ("large", np.float32),
)


def flops(N: int, D_in: int, H: int, D_out: int) -> int:
    """Floating-point operations of the core's five matmuls (module docstring)."""
    return 4 * N * D_in * H + 6 * N * H * D_out


def matmul_side(work: int) -> int:
    """The side n of the square matmul whose 2 n^3 flops are nearest `work`."""
    return max(1, round((work / 2) ** (1 / 3)))


def problem(size: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """X (N, D_in), Y (N, D_out), W1 (D_in, H), W2 (H, D_out), standard normal, float64."""
    rng = np.random.default_rng(seed)
    N, D_in, H, D_out = size["N"], size["D_in"], size["H"], size["D_out"]
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return {name: rng.standard_normal(shape) for name, shape in shapes.items()}


def loops_for(action: Callable[[], object]) -> int:
    """How many calls make one sample last about SAMPLE_SECONDS (at least one)."""
    start = time.perf_counter()
    action()
    once = time.perf_counter() - start
    return max(1, int(SAMPLE_SECONDS / max(once, 1e-9)))


def median_seconds(actions: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds per call of each action, sampled in interleaved rounds."""
    loops = {name: loops_for(action) for name, action in actions.items()}
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(SAMPLES):
        for name, action in actions.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                action()
            samples[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(times) for name, times in samples.items()}


def torch_step(arrays: dict[str, np.ndarray], dtype: type[np.floating]) -> Callable[[], object]:
    """The same loss and gradients by torch autograd (CPU): backward of ||relu(X W1) W2 - Y||^2
    with the intermediates' gradients retained, as the core returns all five."""
    import torch

    X, Y, W1, W2 = (torch.from_numpy(arrays[k].astype(dtype)) for k in ("X", "Y", "W1", "W2"))

    def step() -> object:
        w1 = W1.clone().requires_grad_()
        w2 = W2.clone().requires_grad_()
        H = X @ w1
        H.retain_grad()
        H_relu = H.clamp(min=0)
        H_relu.retain_grad()
        Y_pred = H_relu @ w2
        Y_pred.retain_grad()
        loss = ((Y_pred - Y) ** 2).sum()
        loss.backward()
        return loss.item(), w1.grad, w2.grad, H.grad, H_relu.grad, Y_pred.grad

    return step


def blas_report() -> list[str]:
    lines = [
        f"{lib.get('internal_api')} {lib.get('version')}, {lib.get('num_threads')} threads, "
        f"kernel {lib.get('architecture')}, {os.path.basename(str(lib.get('filepath')))}"
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return lines or ["no BLAS seen by threadpoolctl"]


def main() -> None:
    has_torch = importlib.util.find_spec("torch") is not None
    print(f"numpy {np.__version__}; cores (os.cpu_count) {os.cpu_count()}")
    for line in blas_report():
        print(f"BLAS: {line}")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"):
        print(f"{variable}={os.environ.get(variable, '(unset)')}")
    if has_torch:
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        print("torch is not importable: torch autograd skipped")
    print(
        f"\nloss_and_gradients beside one n x n matmul of the same flops, "
        f"medians of {SAMPLES} samples"
    )
    header = f"{'size':<8}{'dtype':<9}{'GFLOP':>9}{'core ms':>11}{'core GF/s':>11}"
    header += f"{'n':>6}{'matmul ms':>11}{'mm GF/s':>9}{'core/mm':>9}"
    if has_torch:
        header += f"{'torch ms':>10}{'torch/core':>11}"
    print(header)
    for name, dtype in CASES:
        size = SIZES[name]
        arrays = problem(size)
        work = flops(**size)
        n = matmul_side(work)
        rng = np.random.default_rng(1)
        A, B = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        actions: dict[str, Callable[[], Any]] = {
            "core": lambda a=arrays, t=dtype: loss_and_gradients(
                a["X"], a["Y"], a["W1"], a["W2"], dtype=t
            ),
            "matmul": lambda A=A, B=B: A @ B,
        }
        if has_torch:
            actions["torch"] = torch_step(arrays, dtype)
        times = median_seconds(actions)
        core, matmul = times["core"], times["matmul"]
        row = f"{name:<8}{np.dtype(dtype).name:<9}{work / 1e9:>9.4f}{1000 * core:>11.4f}"
        row += f"{work / core / 1e9:>11.2f}{n:>6}{1000 * matmul:>11.4f}"
        row += f"{2 * n**3 / matmul / 1e9:>9.2f}{core / matmul:>9.2f}"
        if has_torch:
            row += f"{1000 * times['torch']:>10.4f}{times['torch'] / core:>11.2f}"
        print(row)
    print(
        "core/mm: the core's time over the equal-flop matmul's (1.00 = at the BLAS limit); "
        "GF/s: GFLOP/s"
    )


if __name__ == "__main__":
    main()
