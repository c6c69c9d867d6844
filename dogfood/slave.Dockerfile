# The arko slave, built from this checkout by the dogfood "image" step:
#   docker build --file dogfood/slave.Dockerfile --tag arko-slave:dev .
# Small (slim base, wheels only, no compiler), non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md setup.py MANIFEST.in ./
COPY arko ./arko
# The web UI the wheel carries, built by `make ui` or the wheel step (no Node.js here).
COPY ui/dist ./ui/dist
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 arko
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
USER arko
WORKDIR /home/arko
EXPOSE 10002
# The gRPC health check every arko daemon serves.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; r = g.HealthStub(grpc.insecure_channel('127.0.0.1:10002')).Check(h.HealthCheckRequest(), timeout=4); sys.exit(r.status != h.HealthCheckResponse.SERVING)"]
ENTRYPOINT ["arko-slave", "--listen_host", "0.0.0.0", "--port", "10002"]
