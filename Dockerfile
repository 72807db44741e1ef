# gradserve's image (README, "Deploy"). The builder stage installs gradserve with its runtime
# dependencies only (no [test] extra) into a virtual environment; the final stage is the same
# slim Python with that environment copied in, run by an unprivileged user.
#
#   docker build -t gradserve .
#   docker run --rm -p 8000:8000 --cpus 2 -e GRADSERVE_WORKERS=2 gradserve
#
# Every setting is a GRADSERVE_* environment variable (README, "Settings").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/gradserve
WORKDIR /src
# What building the wheel needs, and nothing else (.dockerignore lets in only these).
COPY pyproject.toml README.md ./
COPY service/ service/
RUN /opt/gradserve/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 gradserve \
    && useradd --system --uid 10001 --gid gradserve --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gradserve
COPY --from=builder /opt/gradserve /opt/gradserve

# Threads: one core per worker process. Each worker runs one computation at a time
# (GRADSERVE_MAX_CONCURRENT_COMPUTATIONS) on one BLAS thread (GRADSERVE_BLAS_THREADS), so
# GRADSERVE_WORKERS = the container's CPUs uses them all without oversubscribing. These two are
# set here because their defaults, "the cores per worker", come from os.cpu_count(), which in a
# container is the host's core count, not the CPU limit. OPENBLAS_NUM_THREADS and OMP_NUM_THREADS
# size the thread pool OpenBLAS starts when NumPy is imported, before gradserve sets its own count
# (threadpoolctl may raise it from there): without them every worker would first start one thread
# per host core.
ENV PATH="/opt/gradserve/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRADSERVE_HOST=0.0.0.0 \
    GRADSERVE_PORT=8000 \
    GRADSERVE_WORKERS=1 \
    GRADSERVE_MAX_CONCURRENT_COMPUTATIONS=1 \
    GRADSERVE_BLAS_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1

USER 10001:10001
EXPOSE 8000

# Liveness: /healthz computes a 1 x 1 problem. The slim image has no curl; Python's urllib exits
# non-zero on a refused connection, a timeout or any status other than 2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GRADSERVE_PORT', '8000') + '/healthz', timeout=4)"]

# Host, port and workers come from GRADSERVE_HOST, GRADSERVE_PORT and GRADSERVE_WORKERS; options
# given to `docker run IMAGE ...` are added (--workers 4). On SIGTERM gradserve stops accepting
# connections and lets requests finish for GRADSERVE_SHUTDOWN_GRACE_SECONDS: give `docker stop`
# (--time) or the orchestrator more than that.
ENTRYPOINT ["gradserve", "serve"]
