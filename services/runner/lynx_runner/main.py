"""`lynx-runner`: register this host with the scheduler and run the jobs it leases."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import sys
from functools import partial

from lynx_common.errors import ValidationError
from lynx_common.server import configure_logging
from lynx_runner.agent import DEFAULT_DRAIN_GRACE_S, RunnerAgent
from lynx_runner.config import load_config, resolve_python

DEFAULT_SCHEDULER_ADDR = "127.0.0.1:50051"
DEFAULT_TELEMETRY_ADDR = "127.0.0.1:50053"
DRAIN_GRACE_ENV = "LYNX_RUNNER_DRAIN_GRACE_SECONDS"


async def _serve(make_agent) -> None:
    """SIGTERM drains (see RunnerAgent.drain); SIGINT, or a second signal, stops at once."""
    stop, drain = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if sig == signal.SIGTERM and not drain.is_set():
            drain.set()
        else:
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    agent = make_agent()  # grpc.aio channels bind to the running loop
    await agent.run(stop, drain)


def drain_grace(flag: float | None, env=os.environ) -> float:
    """Seconds a draining runner lets its jobs finish: --drain-grace, else
    LYNX_RUNNER_DRAIN_GRACE_SECONDS, else 30."""
    if flag is not None:
        value, field = flag, "--drain-grace"
    elif DRAIN_GRACE_ENV in env:
        field = DRAIN_GRACE_ENV
        try:
            value = float(env[DRAIN_GRACE_ENV])
        except ValueError:
            raise ValidationError(field, f"must be a number of seconds, got {env[DRAIN_GRACE_ENV]!r}") from None
    else:
        return DEFAULT_DRAIN_GRACE_S
    if not (math.isfinite(value) and 0 <= value <= 24 * 3600):
        raise ValidationError(field, f"must be between 0 and 86400 seconds, got {value!r}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Parse flags, load the config (file + LYNX_RUNNER_*), connect and run until signalled."""
    parser = argparse.ArgumentParser(
        prog="lynx-runner",
        description="Run Lynx jobs on this host. The scheduler address comes from "
        f"LYNX_SCHEDULER_ADDR (default {DEFAULT_SCHEDULER_ADDR}), telemetry-ingest from "
        f"LYNX_TELEMETRY_ADDR (default {DEFAULT_TELEMETRY_ADDR}).",
    )
    parser.add_argument("--config", help="runner YAML config (fields may be overridden by LYNX_RUNNER_*)")
    parser.add_argument("--runner-id", default=socket.gethostname(), help="unique runner id (default: host name)")
    parser.add_argument("--name", help="display name (default: the runner id)")
    parser.add_argument("--log-level", default=os.environ.get("LYNX_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--drain-grace", type=float, default=None,
        help="on SIGTERM, seconds running jobs may take to finish before they are handed back "
        f"(default: ${DRAIN_GRACE_ENV} or {DEFAULT_DRAIN_GRACE_S:g}); a second signal or SIGINT stops at once",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        grace = drain_grace(args.drain_grace)
        config = load_config(args.config)
        resolve_python(config.python_executable)
    except ValidationError as exc:
        print(f"lynx-runner: config error: {exc}", file=sys.stderr)
        sys.exit(2)
    if "basilisk" in config.engines and not config.entrypoint_path.is_file():
        print(f"lynx-runner: config error: basilisk_entrypoint {config.entrypoint_path} does not exist",
              file=sys.stderr)
        sys.exit(2)
    make_agent = partial(
        RunnerAgent,
        config,
        runner_id=args.runner_id,
        name=args.name or args.runner_id,
        scheduler_addr=os.environ.get("LYNX_SCHEDULER_ADDR", DEFAULT_SCHEDULER_ADDR),
        telemetry_addr=os.environ.get("LYNX_TELEMETRY_ADDR", DEFAULT_TELEMETRY_ADDR),
        drain_grace=grace,
    )
    asyncio.run(_serve(make_agent))


if __name__ == "__main__":
    main()
