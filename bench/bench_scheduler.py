"""Scheduler throughput: jobs leased and completed per second, and the time to submit a big batch.

    .venv/bin/python bench/bench_scheduler.py [--jobs 5000] [--runners 4] [--slots 8] [--submit 10000]
                                              [--secure] [--ray-venv PATH]

A real sampler and a real scheduler run as subprocesses on 127.0.0.1 with SQLite in a temporary
directory. This process plays N runners: each holds a Connect stream and completes every lease
the moment it arrives (a no-op engine), so the figure is the scheduler's own cost per job:
lease, attempt row, result, ack. Reference: Ray's published single-client synchronous task
rate, 981 tasks/s (ray-project/ray release/microbenchmark, "single client tasks sync").

With `--secure`, the same measurement runs again on a stack with TLS and token auth on (a private CA,
the admin token on every call), and the bench prints the secured figures against the plaintext ones.

With `--ray-venv PATH` (a virtual environment with ray installed), the same invocation also runs
Ray's no-op comparison in that venv's python, after the scheduler has stopped: `ray.get` of 5,000
`.remote()` calls in flight at once, and 1,000 one at a time (`ray.init(num_cpus=2)`), and prints
the Lynx figure against Ray's many-in-flight rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

import grpc

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli.secure import StackSecurity
from lynx_cli.stack import Stack

RAY_SYNC_TASKS_PER_S = 981.0
RAY_SCRIPT = """
import json, time, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
@ray.remote
def noop():
    return None
ray.get([noop.remote() for _ in range(200)])
started = time.perf_counter()
ray.get([noop.remote() for _ in range(5000)])
many = 5000 / (time.perf_counter() - started)
started = time.perf_counter()
for _ in range(1000):
    ray.get(noop.remote())
one = 1000 / (time.perf_counter() - started)
print(json.dumps({"many": many, "one": one}))
ray.shutdown()
"""


def ray_rates(venv: str) -> dict[str, float]:
    """Ray's no-op task rates, measured in `venv`'s python: {"many": in flight, "one": one at a time}."""
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"--ray-venv: {python} does not exist")
    done = subprocess.run([str(python), "-c", RAY_SCRIPT], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"--ray-venv: the Ray comparison failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def config(runs: int) -> cfg.BatchConfig:
    return cfg.BatchConfig(
        simulation=cfg.Simulation(name="bench", engine="basilisk", type="bench"),
        monte_carlo=cfg.MonteCarlo(runs=runs, seed=1, sampling_method="latin_hypercube"),
        dispersions=[
            cfg.Dispersion(name=f"p{i}", distribution=cfg.Distribution(type="uniform", min=0.0, max=1.0))
            for i in range(4)
        ],
        compute=cfg.Compute(max_retries=0),
    )


class NoopRunner:
    """A runner whose engine finishes every lease at once; counts acks."""

    def __init__(self, stub, runner_id: str, slots: int):
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.acked = 0
        self.register = pb.RegisterRunner(
            runner_id=runner_id, engines=["basilisk"], heartbeat_interval_secs=2.0,
            capabilities=pb.RunnerCapabilities(max_concurrent_jobs=slots, supported_simulation_types=["bench"]),
        )
        self.call = stub.Connect(self._requests())
        self.reader = asyncio.create_task(self._read())
        self.beats = asyncio.create_task(self._beat())

    async def _requests(self):
        yield pb.ConnectRequest(register=self.register)
        while True:
            yield await self.outbox.get()

    async def _beat(self):
        while True:
            await asyncio.sleep(2.0)
            self.outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat()))

    async def _read(self):
        async for message in self.call:
            kind = message.WhichOneof("message")
            if kind == "lease":
                lease = message.lease
                result = pb.JobResult(success=True, termination_reason=pb.TERMINATION_REASON_EXITED,
                                      execution_time_secs=0.0)
                self.outbox.put_nowait(pb.ConnectRequest(job_finished=pb.JobFinished(
                    job_id=lease.job_id, attempt=lease.attempt, result=result)))
            elif kind == "ack":
                self.acked += 1

    async def close(self):
        self.call.cancel()
        for task in (self.reader, self.beats):
            task.cancel()
        await asyncio.gather(self.reader, self.beats, return_exceptions=True)


async def throughput(stub, jobs: int, runners: int, slots: int) -> tuple[float, float]:
    """(jobs/s from submit to the last ack, jobs/s from the first to the last ack)."""
    hosts = [NoopRunner(stub, f"bench-{i}", slots) for i in range(runners)]
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    reply = await stub.SubmitBatch(pb.SubmitBatchRequest(name="throughput", runs_override=jobs,
                                                         config=config(jobs)), timeout=600)
    submitted = time.perf_counter()
    while sum(h.acked for h in hosts) < jobs:
        await asyncio.sleep(0.01)
    ended = time.perf_counter()
    batch = (await stub.GetBatch(pb.GetBatchRequest(batch_id=reply.batch_id), timeout=10)).batch
    completed = {c.status: c.count for c in batch.jobs_by_status}.get(pb.JOB_STATUS_COMPLETED, 0)
    assert completed == jobs, batch.jobs_by_status
    for host in hosts:
        await host.close()
    return jobs / (ended - started), jobs / (ended - submitted)


async def submit_time(stub, runs: int) -> float:
    started = time.perf_counter()
    reply = await stub.SubmitBatch(pb.SubmitBatchRequest(name="submit", runs_override=runs, config=config(runs)),
                                   timeout=600)
    elapsed = time.perf_counter() - started
    assert reply.total_jobs == runs
    return elapsed


async def measure(args, secure: bool) -> tuple[float, float, float]:
    """(jobs/s submit to last ack, jobs/s after submit, SubmitBatch seconds) on a fresh sampler + scheduler;
    `secure`: TLS and token auth on (a private CA, an admin token sent with every call)."""
    with tempfile.TemporaryDirectory(prefix="lynx-bench-") as tmp:
        security = StackSecurity(tls=True, auth=True) if secure else None
        stack = Stack(Path(tmp), services=("sampler", "scheduler"), env={"LYNX_LOG_LEVEL": "WARNING"}, stop_grace=30,
                      security=security)
        if args.profile:  # cProfile of the scheduler's main thread, written when it stops
            stack.processes["scheduler"].argv[1:1] = ["-m", "cProfile", "-o", args.profile]
        with stack:
            if security is None:
                channel = grpc.aio.insecure_channel(stack.ports.scheduler_addr)
            else:
                creds = grpc.composite_channel_credentials(
                    security.grpc_credentials(), grpc.access_token_call_credentials(security.admin_token))
                channel = grpc.aio.secure_channel(stack.ports.scheduler_addr, creds)
            async with channel:
                stub = pb_grpc.SchedulerServiceStub(channel)
                await throughput(stub, 200, args.runners, args.slots)  # warm-up
                overall, dispatch = await throughput(stub, args.jobs, args.runners, args.slots)
                submit_s = await submit_time(stub, args.submit)
    return overall, dispatch, submit_s


async def main_async(args) -> None:
    overall, dispatch, submit_s = await measure(args, secure=False)
    print(f"scheduler: {args.jobs} no-op jobs, {args.runners} runners x {args.slots} slots, loopback gRPC, SQLite WAL")
    print(f"  leased+completed, submit to last ack : {overall:8.1f} jobs/s  "
          f"({overall / RAY_SYNC_TASKS_PER_S:.2f}x Ray single-client sync tasks, {RAY_SYNC_TASKS_PER_S:g}/s)")
    print(f"  leased+completed, after submit       : {dispatch:8.1f} jobs/s  "
          f"({dispatch / RAY_SYNC_TASKS_PER_S:.2f}x Ray)")
    print(f"  SubmitBatch of {args.submit} jobs (sampler + insert): {submit_s:6.2f} s "
          f"({args.submit / submit_s:.0f} jobs/s)")
    print(f"  reference: Ray single client tasks sync = {RAY_SYNC_TASKS_PER_S:g} tasks/s (published microbenchmark)")
    if args.secure:
        s_overall, s_dispatch, s_submit = await measure(args, secure=True)
        print("  with TLS and token auth (same invocation; target >= 0.90x plaintext):")
        print(f"    leased+completed, submit to last ack : {s_overall:8.1f} jobs/s  "
              f"({s_overall / overall:.2f}x plaintext)")
        print(f"    leased+completed, after submit       : {s_dispatch:8.1f} jobs/s  ({s_dispatch / dispatch:.2f}x)")
        print(f"    SubmitBatch of {args.submit} jobs: {s_submit:6.2f} s  ({submit_s / s_submit:.2f}x plaintext speed)")
    if args.ray_venv:
        ray = ray_rates(args.ray_venv)
        print(f"  Ray in {args.ray_venv}: {ray['many']:.0f} no-op tasks/s with 5,000 in flight, "
              f"{ray['one']:.0f}/s one at a time (num_cpus=2, this machine, this invocation)")
        print(f"  Lynx / Ray many-in-flight: {overall / ray['many']:.2f}x (submit to last ack), "
              f"{dispatch / ray['many']:.2f}x (after submit)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--submit", type=int, default=10_000)
    parser.add_argument("--profile", help="write a cProfile of the scheduler process to this file")
    parser.add_argument("--secure", action="store_true",
                        help="also measure with TLS and token auth on, in the same invocation, against plaintext")
    parser.add_argument("--ray-venv", help="a virtual environment with ray: also run Ray's no-op comparison there")
    args = parser.parse_args()
    if args.ray_venv and not (Path(args.ray_venv) / "bin" / "python").exists():
        parser.error(f"--ray-venv: {Path(args.ray_venv) / 'bin' / 'python'} does not exist")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
