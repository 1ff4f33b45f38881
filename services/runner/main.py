"""`lynx-runner`: register this host with the scheduler and run the jobs it leases."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from functools import partial

from lynx_common.errors import ValidationError
from lynx_common.server import configure_logging
from lynx_runner.agent import RunnerAgent
from lynx_runner.config import load_config, resolve_python

DEFAULT_SCHEDULER_ADDR = "127.0.0.1:50051"
DEFAULT_TELEMETRY_ADDR = "127.0.0.1:50053"


async def _serve(make_agent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = make_agent()  # grpc.aio channels bind to the running loop
    await agent.run(stop)


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
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(args.config)
        resolve_python(config.python_executable)
    except ValidationError as exc:
        print(f"lynx-runner: config error: {exc}", file=sys.stderr)
        sys.exit(2)
    if not config.entrypoint_path.is_file():
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
    )
    asyncio.run(_serve(make_agent))


if __name__ == "__main__":
    main()
