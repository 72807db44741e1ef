"""The NumPy core beside the machine's practical limit: `loss_and_gradients` at three sizes,
each beside ONE square matmul doing the same number of floating-point operations.

The core's operations: the forward pass does X W1 (2 N D_in H) and H_relu W2 (2 N H D_out); the
backward pass does dY_pred W2^T and H_relu^T dY_pred (2 N H D_out each) and X^T dH (2 N D_in H),
so flops = 4 N D_in H + 6 N H D_out (the elementwise work is left out). The baseline is a
matmul of two n x n matrices, 2 n^3 flops, with n = round((flops / 2) ** (1/3)): the same work
in the one shape BLAS runs best, so the ratio says how far the core is from what this machine's
BLAS can do. Inputs are float64, as the service hands them to the core; the matmul runs in the
core's dtype.

Beside them, the plainest NumPy implementation of the same five products and the loss (no
check of any kind; `plain_step`), whose time the core's should stay within 1.3 times of at the
tiny size, where the service's own work per call shows most.

Beside them, when torch is importable (`pip install -e '.[bench]'`), PyTorch autograd on the
same problem, run as a user of torch would write it: leaves X, Y, W1 and W2 (W1 and W2
requiring gradients), `loss = ((relu(X @ W1) @ W2 - Y) ** 2).sum()` with `retain_grad()` on H,
H_relu and Y_pred so that all five gradients are produced, then `loss.backward()`; each call
times the forward and the backward. Torch gets its tensors in the dtype already and runs with as
many threads as NumPy's BLAS; the core converts its float64 inputs inside the timed call.

Run with `.venv/bin/python -m bench.compute`. Prints medians of several interleaved samples,
the BLAS and threads threadpoolctl sees, the ratios core / matmul and core / torch, and for each
row the targets of the compute issue and whether this run meets them: core / matmul at most 1.18
at large float64 (at least 85% of the matmul's FLOP rate), and core / torch below 1 at every
size. `BENCH_QUICK=1` runs fewer samples with the large problem shrunk, to check that the
benchmark works, not to compare.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

from bench.summary import record, unavailable
from bench.timing import QUICK
from service.core.network import loss_and_gradients

SAMPLES = 3 if QUICK else 7
SAMPLE_SECONDS = 0.05 if QUICK else 0.2
"""Each sample repeats the call until it has run at least this long, then times one call."""

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"N": 8, "D_in": 4, "H": 16, "D_out": 3},
    "medium": {"N": 256, "D_in": 128, "H": 256, "D_out": 32},
    "large": (
        {"N": 512, "D_in": 256, "H": 256, "D_out": 64}
        if QUICK
        else {"N": 4096, "D_in": 1024, "H": 1024, "D_out": 256}
    ),
}
ORDER = ("X", "Y", "W1", "W2")
"""The order `loss_and_gradients` takes the matrices in."""

CASES = tuple((name, dtype) for dtype in (np.float64, np.float32) for name in SIZES)


def flops(N: int, D_in: int, H: int, D_out: int) -> int:
    """Floating-point operations of the core's five matmuls (module docstring)."""
    return 4 * N * D_in * H + 6 * N * H * D_out


def matmul_side(work: int) -> int:
    """The side n of the square matmul whose 2 n^3 flops are nearest `work`."""
    return max(1, round(math.cbrt(work / 2)))


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


MATMUL_TARGET = 1.18
"""core / matmul at most this at large float64: at least 85% of the matmul's FLOP rate."""

TORCH_TARGET = 1.0
"""core / torch below this at every size and dtype: faster than PyTorch autograd."""

PLAIN_TARGET = 1.3
"""core / plain NumPy at most this at the tiny size: the service's checks cost little."""


def targets(
    name: str, dtype: type[np.floating], vs_matmul: float, vs_plain: float, vs_torch: float | None
) -> str:
    """This row's targets, each with whether this run meets it."""
    met = {True: "met", False: "MISSED"}
    found = []
    if name == "large" and dtype is np.float64:
        found.append(f"mm<={MATMUL_TARGET} {met[vs_matmul <= MATMUL_TARGET]}")
    if name == "tiny":
        found.append(f"plain<={PLAIN_TARGET} {met[vs_plain <= PLAIN_TARGET]}")
    if vs_torch is not None:
        found.append(f"torch<{TORCH_TARGET:g} {met[vs_torch < TORCH_TARGET]}")
    return ", ".join(found)


def plain_step(arrays: dict[str, np.ndarray], dtype: type[np.floating]) -> Callable[[], object]:
    """The same loss and five gradients in the plainest NumPy, as a student would write them:
    no check of any kind. It converts its float64 inputs to `dtype` in the call, as the core
    does."""

    def step() -> object:
        X, Y, W1, W2 = (np.asarray(arrays[k], dtype=dtype) for k in ORDER)
        H = X @ W1
        H_relu = np.maximum(H, 0)
        residual = H_relu @ W2 - Y
        loss = float((residual * residual).sum())
        dY_pred = 2 * residual
        dH_relu = dY_pred @ W2.T
        dH = dH_relu * (H > 0)
        return loss, dY_pred, H_relu.T @ dY_pred, dH_relu, dH, X.T @ dH

    return step


def torch_step(arrays: dict[str, np.ndarray], dtype: type[np.floating]) -> Callable[[], object]:
    """The same loss and five gradients by torch autograd (CPU), one forward and backward per
    call (module docstring); the leaves are made once, in `dtype`, and their gradients cleared
    before each call. torch is optional (the bench extra): imported here, untyped, so that the
    type check passes without it."""
    torch: Any = importlib.import_module("torch")

    X, Y, W1, W2 = (torch.from_numpy(arrays[k].astype(dtype)) for k in ORDER)
    W1.requires_grad_()
    W2.requires_grad_()

    def step() -> object:
        W1.grad = W2.grad = None
        H = X @ W1
        H.retain_grad()
        H_relu = torch.relu(H)
        H_relu.retain_grad()
        Y_pred = H_relu @ W2
        Y_pred.retain_grad()
        loss = ((Y_pred - Y) ** 2).sum()
        loss.backward()
        return loss.item(), Y_pred.grad, W2.grad, H_relu.grad, H.grad, W1.grad

    return step


def blas_threads() -> int | None:
    """The thread count of the BLAS NumPy calls, as threadpoolctl sees it."""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return int(lib["num_threads"])
    return None


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
        torch: Any = importlib.import_module("torch")
        threads = blas_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (as NumPy's BLAS)")
    else:
        print("torch is not importable: torch autograd skipped (pip install -e '.[bench]')")
    print(
        f"\nloss_and_gradients beside one n x n matmul of the same flops"
        f"{' and torch autograd' if has_torch else ''}, medians of {SAMPLES} interleaved samples"
    )
    header = f"{'size':<8}{'dtype':<9}{'GFLOP':>9}{'core ms':>11}{'core GF/s':>11}"
    header += f"{'n':>6}{'matmul ms':>11}{'mm GF/s':>9}{'core/mm':>9}{'plain ms':>11}{'/plain':>8}"
    if has_torch:
        header += f"{'torch ms':>11}{'core/torch':>12}"
    header += "  targets"
    print(header)
    for name, dtype in CASES:
        size = SIZES[name]
        arrays = problem(size)
        work = flops(**size)
        n = matmul_side(work)
        rng = np.random.default_rng(1)
        A, B = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        actions: dict[str, Callable[[], object]] = {
            "core": partial(
                loss_and_gradients, arrays["X"], arrays["Y"], arrays["W1"], arrays["W2"], dtype
            ),
            "matmul": partial(np.matmul, A, B),
            "plain": plain_step(arrays, dtype),
        }
        if has_torch:
            actions["torch"] = torch_step(arrays, dtype)
        times = median_seconds(actions)
        core, matmul, plain = times["core"], times["matmul"], times["plain"]
        vs_torch = core / times["torch"] if has_torch else None
        row = f"{name:<8}{np.dtype(dtype).name:<9}{work / 1e9:>9.4f}{1000 * core:>11.4f}"
        row += f"{work / core / 1e9:>11.2f}{n:>6}{1000 * matmul:>11.4f}"
        row += f"{2 * n**3 / matmul / 1e9:>9.2f}{core / matmul:>9.2f}"
        row += f"{1000 * plain:>11.4f}{core / plain:>8.2f}"
        if vs_torch is not None:
            row += f"{1000 * times['torch']:>11.4f}{vs_torch:>12.2f}"
        print(f"{row}  {targets(name, dtype, core / matmul, core / plain, vs_torch)}")
        label = f"{name} {np.dtype(dtype).name}"
        ms = f"{1000 * core:.4g} ms"
        if name == "large" and dtype is np.float64:
            detail = f"{ms} vs {1000 * matmul:.4g} ms"
            record(
                f"compute {label}: core / matmul",
                core / matmul,
                detail,
                compare="<=",
                threshold=MATMUL_TARGET,
            )
        if name == "tiny":
            record(
                f"compute {label}: core / plain NumPy",
                core / plain,
                f"{1000 * core:.4g} ms vs {1000 * plain:.4g} ms",
                compare="<=",
                threshold=PLAIN_TARGET,
            )
        if vs_torch is not None:
            detail = f"{ms} vs {1000 * times['torch']:.4g} ms"
            record(
                f"compute {label}: core / torch autograd",
                vs_torch,
                detail,
                compare="<",
                threshold=TORCH_TARGET,
            )
        else:
            unavailable(f"compute {label}: core / torch autograd", "torch is not importable")
    print(
        "core/mm: the core's time over the equal-flop matmul's (1.00 = at the BLAS limit); "
        "/plain: over the plainest NumPy's, with no checks; "
        "core/torch: over torch autograd's (below 1: faster); GF/s: GFLOP/s"
    )


if __name__ == "__main__":
    main()
