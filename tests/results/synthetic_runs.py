"""Synthetic batches as the scheduler streams them (BatchConfig + chunks of Run messages), with known truth."""

from __future__ import annotations

import numpy as np
from google.protobuf import json_format

from lynx.common.v1 import batch_config_pb2 as cpb
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import parameter_value

ISHIGAMI_MEAN = 3.5
ISHIGAMI_VAR = 13.8446
ISHIGAMI_S1 = (0.3139, 0.4424, 0.0)


def ishigami(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3**4 * np.sin(x1)


def config(
    numeric: list[str], choices: dict[str, list] | None = None, constants: dict[str, float] | None = None, runs: int = 0
) -> cpb.BatchConfig:
    dispersions = [{"name": n, "distribution": {"type": "uniform", "min": -np.pi, "max": np.pi}} for n in numeric]
    dispersions += [{"name": n, "distribution": {"type": "choice", "values": v}} for n, v in (choices or {}).items()]
    dispersions += [{"name": n, "distribution": {"type": "constant", "value": v}} for n, v in (constants or {}).items()]
    return json_format.ParseDict(
        {"monte_carlo": {"runs": runs, "seed": 7}, "dispersions": dispersions}, cpb.BatchConfig()
    )


def run(
    run_id: int,
    inputs: dict,
    outputs: dict,
    status: int = pb.JOB_STATUS_COMPLETED,
    reason: int = pb.TERMINATION_REASON_EXITED,
    condition: tuple[str, str] | None = None,
    finished_at: float | None = None,
    seconds: float = 1.0,
) -> pb.Run:
    r = pb.Run(
        job_id=f"job-{run_id}",
        run_id=run_id,
        seed=1000 + run_id,
        status=status,
        termination_reason=reason,
        attempts=1,
        execution_time_secs=seconds,
        runner_id="runner-a",
    )
    r.parameters.extend(ppb.Parameter(name=k, value=parameter_value(v)) for k, v in inputs.items())
    r.outputs.extend(ppb.Parameter(name=k, value=parameter_value(v)) for k, v in outputs.items())
    if condition:
        r.termination_variable, r.termination_condition = condition
    if status in (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED):
        r.finished_at.FromNanoseconds(int((finished_at if finished_at is not None else 1.7e9 + run_id) * 1e9))
    if status == pb.JOB_STATUS_FAILED:
        r.error_message = "exit 1"
        r.exit_code = 1
    return r


def chunks(runs: list[pb.Run], size: int = 1000) -> list[list[pb.Run]]:
    return [runs[i : i + size] for i in range(0, len(runs), size)]


def ishigami_runs(n: int, seed: int = 1) -> tuple[cpb.BatchConfig, list[pb.Run], np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n, 3))
    y = ishigami(x[:, 0], x[:, 1], x[:, 2])
    runs = [run(i, {"x1": x[i, 0], "x2": x[i, 1], "x3": x[i, 2]}, {"y": y[i]}) for i in range(n)]
    return config(["x1", "x2", "x3"], runs=n), runs, y


def wide_runs(n: int, inputs: int = 20, outputs: int = 5, seed: int = 2) -> tuple[cpb.BatchConfig, list[pb.Run]]:
    """A finished batch of n runs, `inputs` uniform inputs, `outputs` numeric outputs, ~3 % failures."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n, inputs))
    names = [f"x{i}" for i in range(inputs)]
    runs = []
    for i in range(n):
        y = {f"y{j}": float(x[i, j] + 0.5 * x[i, (j + 1) % inputs] ** 2) for j in range(outputs)}
        failed = x[i, 0] > 0.94 * np.pi
        runs.append(
            run(
                i,
                dict(zip(names, x[i].tolist(), strict=True)),
                y,
                status=pb.JOB_STATUS_FAILED if failed else pb.JOB_STATUS_COMPLETED,
                reason=pb.TERMINATION_REASON_EARLY_TERMINATION if failed else pb.TERMINATION_REASON_EXITED,
                condition=("x0", "> 2.95") if failed else None,
            )
        )
    return config(names, runs=n), runs
