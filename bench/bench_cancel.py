"""Cancelling a huge batch: how long it takes and how long a parallel GetRunner waits meanwhile.

    .venv/bin/python bench/bench_cancel.py [--runs 1000000] [--chunk 5000]

A real sampler and a real scheduler run as subprocesses on 127.0.0.1 with SQLite in a temporary
directory; this process submits one batch of `runs` (no runner can take it), holds one idle runner's
Connect stream (heartbeats every 0.5 s), then cancels the batch while another task calls GetRunner in
a loop. It does this twice: with one UPDATE for the whole batch (the baseline, as before the chunked
cancel) and with LYNX_LIMIT_CANCEL_CHUNK = `chunk`, and prints both and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli.stack import Ports, Stack
from lynx_common.server import client_channel


def config(runs: int) -> cfg.BatchConfig:
    return cfg.BatchConfig(
        simulation=cfg.Simulation(name="bench", engine="basilisk", type="bench"),
        monte_carlo=cfg.MonteCarlo(runs=runs, seed=1, sampling_method="random"),
        dispersions=[cfg.Dispersion(name="x", distribution=cfg.Distribution(type="uniform", min=0.0, max=1.0))],
    )


async def idle_runner(stub, stop: asyncio.Event) -> int:
    """Hold a runner's stream, heartbeating; returns how many times it was told it is not registered."""
    outbox: asyncio.Queue = asyncio.Queue()
    register = pb.RegisterRunner(runner_id="idle", name="idle", engines=["basilisk"], heartbeat_interval_secs=0.5,
                                 capabilities=pb.RunnerCapabilities(max_concurrent_jobs=1,
                                                                    supported_simulation_types=["none"]))

    async def requests():
        yield pb.ConnectRequest(register=register)
        while not stop.is_set():
            yield await outbox.get()

    async def beat():
        while not stop.is_set():
            await asyncio.sleep(0.5)
            outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat()))

    call = stub.Connect(requests())
    beats = asyncio.create_task(beat())
    await stop.wait()
    beats.cancel()
    call.cancel()
    return 0


async def measure(addr: str, runs: int) -> dict:
    channel = client_channel(addr)
    stub = pb_grpc.SchedulerServiceStub(channel)
    stop = asyncio.Event()
    runner = asyncio.create_task(idle_runner(stub, stop))
    started = time.monotonic()
    batch_id = (await stub.SubmitBatch(pb.SubmitBatchRequest(name="big", config=config(runs)), timeout=3600)).batch_id
    while True:  # until every job is stored and pending
        batch = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=600)).batch
        if sum(c.count for c in batch.jobs_by_status if c.status == pb.JOB_STATUS_PENDING) == runs:
            break
        await asyncio.sleep(0.5)
    submitted = time.monotonic() - started
    waits: list[float] = []
    offline = 0
    cancelling = True

    async def probe():
        nonlocal offline
        while cancelling:
            t = time.monotonic()
            reply = await stub.GetRunner(pb.GetRunnerRequest(runner_id="idle"), timeout=600)
            waits.append(time.monotonic() - t)
            offline += reply.runner.status != pb.RUNNER_STATUS_ONLINE
            await asyncio.sleep(0.01)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.3)
    t = time.monotonic()
    reply = await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch_id), timeout=3600)
    cancel_s = time.monotonic() - t
    await asyncio.sleep(1.0)
    cancelling = False
    await prober
    stop.set()
    await runner
    await channel.close()
    return {"submit_s": submitted, "cancel_s": cancel_s, "cancelled": reply.cancelled_jobs,
            "max_get_runner_s": max(waits), "get_runner_calls": len(waits), "runner_seen_offline": offline}


def run(runs: int, chunk: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"LYNX_LIMIT_CANCEL_CHUNK": str(chunk)}
        with Stack(Path(tmp), Ports(0, 0, 0, 0), services=("sampler", "scheduler"), env=env) as stack:
            return asyncio.run(measure(stack.ports.scheduler_addr, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args()
    baseline = run(args.runs, args.runs * 2)
    chunked = run(args.runs, args.chunk)
    for name, r in (("one UPDATE (baseline)", baseline), (f"chunks of {args.chunk}", chunked)):
        print(f"{name:>22}: submit {r['submit_s']:.1f} s, cancel {r['cancel_s']:.2f} s of {r['cancelled']} jobs, "
              f"slowest GetRunner {r['max_get_runner_s'] * 1000:.0f} ms over {r['get_runner_calls']} calls, "
              f"runner seen offline {r['runner_seen_offline']} times")
    print(f"ratio chunked/baseline: cancel {chunked['cancel_s'] / baseline['cancel_s']:.2f}, slowest GetRunner "
          f"{chunked['max_get_runner_s'] / baseline['max_get_runner_s']:.3f}")


if __name__ == "__main__":
    main()
