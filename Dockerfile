# syntax=docker/dockerfile:1
# One image for every Lynx service: compose.yaml starts one container per
# service from it, choosing the service by `command`.
#   docker build -t lynx:local .
#   docker run --rm lynx:local lynx --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLCONFIGDIR=/tmp/matplotlib

# Install every Lynx package (the CLI with Basilisk for the runner's scenarios)
# and the scenario telemetry client as ordinary, non-editable packages, then
# drop the sources. Each package is its own folder with its own pyproject.toml.
WORKDIR /src
COPY gen/python gen/python
COPY services services
COPY gateway gateway
COPY cli cli
COPY clients/python clients/python
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ./gen/python "./services/common[sqlite]" ./services/sampler ./services/scheduler \
        ./services/telemetry ./services/runner ./services/results ./gateway "./cli[basilisk]" ./clients/python \
 && rm -rf /src

# What the runner launches: scenarios and runner configs, relative to /app
# (configs/lynx-runner-basilisk.yaml has working_directory: .).
WORKDIR /app
COPY scenarios scenarios
COPY configs configs

# Run as an unprivileged user; /data (SQLite) and /runs (job outputs) are the
# mount points of named volumes, which inherit this ownership when created.
RUN useradd --create-home --uid 10001 --user-group lynx \
 && mkdir -p /data /runs \
 && chown lynx:lynx /data /runs
USER lynx

EXPOSE 8080 50051 50052 50053
CMD ["lynx", "--help"]
