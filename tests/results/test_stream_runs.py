"""StreamRuns: a batch's runs table in run order, page by page, with inputs, outputs and endings,
and outputs kept with the result across a scheduler restart."""

from __future__ import annotations

import grpc
import pytest
from results_harness import scheduler_at
from scheduler_harness import submit, tutorial_config

from lynx.common.v1 import parameters_pb2 as ppb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common.columns import value_of
from lynx_common.names import TERMINATION_REASON
from lynx_results import records, table
from lynx_scheduler.columns import python_columns
from lynx_scheduler.rows import JobRow
from lynx_scheduler.runs import input_rows, run_bytes


def finished(lease: pb.JobLease, success: bool, radius: float, **extra) -> pb.ConnectRequest:
    """A JobFinished carrying outputs, one artifact entry and a note, as a runner would send it."""
    result = pb.JobResult(
        success=success,
        exit_code=0 if success else 1,
        execution_time_secs=1.5,
        termination_reason=TERMINATION_REASON.value("exited" if success else "early_termination"),
        outputs=[
            ppb.Parameter(name="final_state.radius_km", value=ppb.ParameterValue(number=radius)),
            ppb.Parameter(name="orbits", value=ppb.ParameterValue(integer=3)),
            ppb.Parameter(name="decayed", value=ppb.ParameterValue(flag=not success)),
        ],
        notes=["a note"],
        **extra,
    )
    return pb.ConnectRequest(job_finished=pb.JobFinished(job_id=lease.job_id, attempt=lease.attempt, result=result))


async def all_runs(stub, batch_id: str, page_size: int = 0) -> list[list[pb.Run]]:
    call = stub.StreamRuns(pb.StreamRunsRequest(batch_id=batch_id, page_size=page_size), timeout=10)
    return [list(page.runs) async for page in call]


async def test_runs_stream_in_run_order_with_inputs_outputs_and_endings(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1", slots=3)
        batch_id = await submit(stub, tutorial_config(max_retries=0, max_parallel_jobs=0), runs=5)
        leases = [await host.next_lease() for _ in range(3)]
        host.outbox.put_nowait(finished(leases[0], True, 7000.5))
        host.outbox.put_nowait(
            finished(
                leases[1],
                False,
                6300.0,
                termination_variable="altitude_km",
                termination_condition="< 200",
                termination_value=180.0,
                error_message="decayed",
            )
        )
        await host.next_ack()
        await host.next_ack()
        pages = await all_runs(stub, batch_id, page_size=2)
        assert [len(p) for p in pages] == [2, 2, 1]
        runs = [r for p in pages for r in p]
        assert [r.run_id for r in runs] == [0, 1, 2, 3, 4]
        by_job = {r.job_id: r for r in runs}
        for lease in leases:
            job = (await stub.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
            assert list(by_job[lease.job_id].parameters) == list(job.parameters)
            assert by_job[lease.job_id].seed == job.seed != 0
        ok, bad, running = (by_job[lease.job_id] for lease in leases)
        assert ok.status == pb.JOB_STATUS_COMPLETED and ok.runner_id == "r1" and ok.attempts == 1
        assert {o.name: o.value.WhichOneof("kind") for o in ok.outputs} == {
            "final_state.radius_km": "number",
            "orbits": "integer",
            "decayed": "flag",
        }
        assert ok.outputs[0].value.number == 7000.5 and ok.execution_time_secs == 1.5
        assert ok.HasField("finished_at") and not ok.HasField("error_message")
        assert bad.status == pb.JOB_STATUS_FAILED
        assert bad.termination_reason == pb.TERMINATION_REASON_EARLY_TERMINATION
        assert (bad.termination_variable, bad.termination_condition, bad.termination_value) == (
            "altitude_km",
            "< 200",
            180.0,
        )
        assert bad.error_message == "decayed" and bad.exit_code == 1
        assert running.status == pb.JOB_STATUS_RUNNING and not running.outputs
        assert not running.HasField("finished_at")
        rest = [r for r in runs if r.job_id not in {lease.job_id for lease in leases}]
        assert len(rest) == 2  # pending, or leased since the runner's slots freed up: no result yet
        assert all(r.status in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING) for r in rest)
        assert all(r.parameters and not r.outputs and not r.HasField("finished_at") for r in rest)
        assert sum(len(p) for p in await all_runs(stub, batch_id)) == 5  # page_size 0: the default page
        call = stub.StreamRuns(pb.StreamRunsRequest(batch_id=batch_id, page_size=2, columnar=True), timeout=10)
        columnar = [page async for page in call]
        assert [len(p.page.run_ids) for p in columnar] == [2, 2, 1] and not any(p.runs for p in columnar)
        config = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), timeout=5)).batch.config
        rows_csv = b"".join(table.csv_chunks(table.layout(config, [runs]), [runs]))
        lay = table.layout(config, columnar)
        assert dict(lay.outputs) == {"decayed": "flag", "final_state.radius_km": "number", "orbits": "number"}
        lines = {line.split(",")[1]: line for line in b"".join(table.csv_chunks(lay, columnar)).decode().splitlines()}
        expected = {line.split(",")[1]: line for line in rows_csv.decode().splitlines()}
        assert lines.keys() == expected.keys()
        for key in ['"job_id"', *(f'"{lease.job_id}"' for lease in leases)]:  # the rest may be leased meanwhile
            assert lines[key] == expected[key]
        cols = records.records(config, columnar)
        assert cols.present["orbits"].tolist().count(True) == 2 and cols.booleans == {"decayed"}
        assert cols.error.tolist().count("decayed") == 1 and cols.seed.tolist() == [r.seed for r in runs]


async def test_outputs_and_notes_survive_a_restart(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        batch_id = await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()
        host.outbox.put_nowait(
            finished(
                lease,
                True,
                6999.0,
                artifacts=[pb.Artifact(name="summary.json", size_bytes=2, sha256="0" * 64, uri="file:///x")],
            )
        )
        await host.next_ack()
    async with scheduler_at(tmp_path) as stub:
        result = (await stub.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job.result
        assert [o.name for o in result.outputs] == ["final_state.radius_km", "orbits", "decayed"]
        assert list(result.notes) == ["a note"] and result.artifacts[0].name == "summary.json"
        results = (await stub.GetBatchResults(pb.GetBatchResultsRequest(batch_id=batch_id), timeout=5)).results
        assert results[0].outputs[0].value.number == 6999.0
        (run,) = (await all_runs(stub, batch_id))[0]
        assert run.outputs[0].value.number == 6999.0


async def test_stream_runs_rejects_an_unknown_batch_and_a_missing_id(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await all_runs(stub, "nope")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await all_runs(stub, "")
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "batch_id" in empty.value.details()


async def test_job_lease_carries_the_batch_results_outputs(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        config = tutorial_config()
        config.results.outputs.extend(["final_state.radius_km", "orbits"])
        await submit(stub, config, runs=1)
        lease = await host.next_lease()
        assert list(lease.outputs) == ["final_state.radius_km", "orbits"]


def test_wire_encoding_matches_messages_built_field_by_field():
    runs = ppb.RunColumns(
        run_ids=[7, 8],
        seeds=[11, 2**53 - 1],
        parameters=[
            ppb.ParameterColumn(name="x", numbers=ppb.DoubleColumn(values=[0.25, -1e300])),
            ppb.ParameterColumn(name="n", integers=ppb.IntegerColumn(values=[-3, 2**62])),
            ppb.ParameterColumn(name="s", texts=ppb.StringColumn(values=["a", "é" * 200])),
            ppb.ParameterColumn(
                name="c",
                choices=ppb.ChoiceColumn(
                    levels=[ppb.ParameterValue(flag=True), ppb.ParameterValue(text="lo")], indices=[1, 0]
                ),
            ),
        ],
    )
    rows = input_rows(runs)
    for i, row in enumerate(rows):
        assert {p.name: value_of(p.value) for p in pb.Run.FromString(row).parameters} == {
            name: values[i] for name, values in python_columns(runs)
        }
    result = pb.JobResult(
        success=False,
        exit_code=-9,
        execution_time_secs=2.5,
        termination_reason=pb.TERMINATION_REASON_TIMEOUT,
        termination_variable="v",
        termination_condition="> 1",
        termination_value=0.0,
        error_message="",
        outputs=[ppb.Parameter(name="o", value=ppb.ParameterValue(integer=4))],
    )
    job = JobRow("job-1", "b", 8, None, 1, None, "Failed", 3, 3, "r9", result.SerializeToString(), 1.0, 1700000000.25)
    expected = pb.Run(
        job_id="job-1",
        run_id=8,
        seed=2**53 - 1,
        parameters=pb.Run.FromString(rows[1]).parameters,
        outputs=result.outputs,
        status=pb.JOB_STATUS_FAILED,
        attempts=3,
        runner_id="r9",
        termination_reason=pb.TERMINATION_REASON_TIMEOUT,
        execution_time_secs=2.5,
        termination_variable="v",
        termination_condition="> 1",
        termination_value=0.0,
        error_message="",
        exit_code=-9,
    )
    expected.finished_at.FromNanoseconds(int(1700000000.25 * 1e9))  # as convert._ts rounds it
    assert pb.Run.FromString(run_bytes(job, 2**53 - 1, rows[1])) == expected
    pending = JobRow("job-2", "b", 0, None, 1, None, "Pending", 0, 0, None, None, None, None)
    assert pb.Run.FromString(run_bytes(pending, 0, b"")) == pb.Run(job_id="job-2", status=pb.JOB_STATUS_PENDING)
