"""SubmitBatch, Preview and ExtendBatch against a real sampler and scheduler on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.common.v1 import parameters_pb2 as ppb
from lynx.sampler.v1 import sampler_service_pb2 as sampler_pb
from lynx.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_common.server import GrpcServer, client_channel
from lynx_common.status import field_violations
from lynx_gateway.convert import config_from_json
from lynx_sampler.seeds import run_seed
from lynx_sampler.server import build_server as build_sampler
from lynx_scheduler.dispatch import Dispatcher
from lynx_scheduler.server import SchedulerServicer
from lynx_scheduler.store import Store

TUTORIAL = json.loads((Path(__file__).parents[1] / "e2e" / "tutorial_body.json").read_text())


def tutorial_config(method: str = "latin_hypercube", seed: int | None = 42) -> cfg.BatchConfig:
    config = config_from_json(TUTORIAL["config"])
    config.monte_carlo.sampling_method = method
    if seed is None:
        config.monte_carlo.ClearField("seed")
    else:
        config.monte_carlo.seed = seed
    return config


class BrokenSampler(sampler_grpc.SamplerServiceServicer):
    """A sampler that dies after its first chunk, as a crashed sampler process would look."""

    async def Sample(self, request, context):
        first = ppb.RunColumns(run_ids=[0], seeds=[7])
        for d in request.dispersions:
            first.parameters.add(name=d.name).numbers.values.append(1.0)
        yield sampler_pb.SampleResponse(total_runs=request.runs, runs=first)
        await context.abort(grpc.StatusCode.INTERNAL, "sampler crashed")


async def start_scheduler(tmp_path: Path, sampler_addr: str):
    store = await Store.open(tmp_path / "scheduler.db")
    dispatcher = Dispatcher(store)
    dispatcher.start()
    sampler_channel = client_channel(sampler_addr)
    servicer = SchedulerServicer(store, dispatcher, sampler_grpc.SamplerServiceStub(sampler_channel))
    server = GrpcServer(lambda s: pb_grpc.add_SchedulerServiceServicer_to_server(servicer, s),
                        ["lynx.scheduler.v1.SchedulerService"])
    await server.start()
    channel = client_channel(server.address)

    async def stop() -> None:
        await channel.close()
        await server.stop(0)
        await dispatcher.stop()
        await sampler_channel.close()
        await store.close()

    return pb_grpc.SchedulerServiceStub(channel), store, stop


@pytest.fixture
async def scheduler(tmp_path):
    sampler = build_sampler()
    await sampler.start()
    stub, store, stop = await start_scheduler(tmp_path, sampler.address)
    stub.store = store
    yield stub
    await stop()
    await sampler.stop(0)


async def preview(stub, config: cfg.BatchConfig, runs: int = 0, limit: int = 0) -> tuple[pb.PreviewResponse, list]:
    chunks = [c async for c in stub.Preview(pb.PreviewRequest(config=config, runs_override=runs, limit=limit),
                                            timeout=30)]
    return chunks[0], [json.loads(d) for c in chunks for d in c.run_config_json]


async def jobs(stub, batch_id: str) -> list[pb.Job]:
    return list((await stub.ListJobs(pb.ListJobsRequest(batch_id=batch_id), timeout=30)).jobs)


def params(job: pb.Job) -> dict:
    """A job's typed parameters as Python values, in declared order."""
    return {p.name: getattr(p.value, p.value.WhichOneof("kind")) for p in job.parameters}


async def test_preview_shows_exactly_the_runs_a_submission_queues(scheduler):
    head, docs = await preview(scheduler, tutorial_config(), runs=6)
    assert head.seed == 42 and head.total_runs == 6
    assert [d["run_id"] for d in docs] == list(range(6))
    assert all(d["metadata"]["seed"] == run_seed(42, d["run_id"]) for d in docs)
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=6, config=tutorial_config()), timeout=30)
    assert reply.seed == 42 and reply.total_jobs == 6
    queued = await jobs(scheduler, reply.batch_id)
    assert [params(j) for j in queued] == [d["parameters"] for d in docs]
    assert [j.seed for j in queued] == [d["metadata"]["seed"] for d in docs]
    # Nothing was queued by the preview itself.
    listed = (await scheduler.ListBatches(pb.ListBatchesRequest(), timeout=5)).batches
    assert [b.batch_id for b in listed] == [reply.batch_id]


async def test_preview_limit_and_declared_parameter_order(scheduler):
    head, docs = await preview(scheduler, tutorial_config(), runs=50, limit=3)
    assert head.total_runs == 50
    assert [d["run_id"] for d in docs] == [0, 1, 2]
    assert list(docs[0]["parameters"]) == list(TUTORIAL["config"]["dispersions"])


async def test_a_batch_without_seed_records_the_one_chosen_and_can_be_reproduced(scheduler):
    reply = await scheduler.SubmitBatch(
        pb.SubmitBatchRequest(runs_override=4, config=tutorial_config(seed=None)), timeout=30
    )
    batch = (await scheduler.GetBatch(pb.GetBatchRequest(batch_id=reply.batch_id), timeout=5)).batch
    assert batch.seed == reply.seed
    assert batch.config.monte_carlo.seed == reply.seed
    _, docs = await preview(scheduler, tutorial_config(seed=reply.seed), runs=4)
    assert [params(j) for j in await jobs(scheduler, reply.batch_id)] == [d["parameters"] for d in docs]


async def test_large_batch_arrives_in_chunks_complete_and_in_order(scheduler):
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=5000, config=tutorial_config("random")),
                                        timeout=60)
    assert reply.total_jobs == 5000
    queued = await jobs(scheduler, reply.batch_id)
    assert [j.run_id for j in queued] == list(range(5000))
    assert len({j.job_id for j in queued}) == 5000


async def test_preview_and_submit_errors_name_the_field(scheduler):
    config = tutorial_config()
    config.dispersions[1].distribution.max = config.dispersions[1].distribution.min
    for call in (
        scheduler.SubmitBatch(pb.SubmitBatchRequest(config=config), timeout=10),
        preview(scheduler, config),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("dispersions.eccentricity.distribution.max ")
        assert field_violations(err.value)[0][0] == "dispersions.eccentricity.distribution.max"
    assert not (await scheduler.ListBatches(pb.ListBatchesRequest(), timeout=5)).batches


async def test_extend_adds_runs_after_the_existing_ones_and_keeps_them(scheduler):
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=8, config=tutorial_config("sobol")),
                                        timeout=30)
    before = [params(j) for j in await jobs(scheduler, reply.batch_id)]
    extended = await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id=reply.batch_id, runs=8), timeout=30)
    assert extended.added_jobs == 8 and extended.batch.total_jobs == 16
    after = await jobs(scheduler, reply.batch_id)
    assert [j.run_id for j in after] == list(range(16))
    assert [params(j) for j in after[:8]] == before
    # Sobol continues its sequence: the 16 runs are those of a 16-run batch.
    _, docs = await preview(scheduler, tutorial_config("sobol"), runs=16)
    assert [params(j) for j in after] == [d["parameters"] for d in docs]


async def test_extend_rejects_bad_requests(scheduler):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id="nope", runs=3), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=2, config=tutorial_config()), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id=reply.batch_id, runs=0), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("runs ") and field_violations(err.value)[0][0] == "runs"


async def test_integer_and_choice_parameters_reach_the_run_config_as_written(scheduler):
    config = tutorial_config("random")
    config.dispersions.add(name="thrusters", distribution=cfg.Distribution(type="integer_uniform", min=1, max=4))
    choice = config.dispersions.add(name="mode", distribution=cfg.Distribution(type="choice"))
    choice.distribution.values.add().string_value = "safe"
    choice.distribution.values.add().string_value = "nominal"
    _, docs = await preview(scheduler, config, runs=40)
    thrusters = [d["parameters"]["thrusters"] for d in docs]
    assert all(isinstance(t, int) for t in thrusters) and set(thrusters) <= {1, 2, 3, 4}
    assert {d["parameters"]["mode"] for d in docs} <= {"safe", "nominal"}
    assert '"thrusters": 3.0' not in json.dumps(docs)
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=40, config=config), timeout=30)
    queued = await jobs(scheduler, reply.batch_id)
    assert [params(j) for j in queued] == [d["parameters"] for d in docs]  # typed the same way
    kinds = {p.name: p.value.WhichOneof("kind") for p in queued[0].parameters}
    assert (kinds["thrusters"], kinds["mode"], kinds["semi_major_axis_m"]) == ("integer", "text", "number")


async def test_a_sampler_dying_mid_stream_leaves_no_half_batch(tmp_path):
    broken = GrpcServer(lambda s: sampler_grpc.add_SamplerServiceServicer_to_server(BrokenSampler(), s),
                        ["lynx.sampler.v1.SamplerService"])
    await broken.start()
    stub, store, stop = await start_scheduler(tmp_path, broken.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitBatch(pb.SubmitBatchRequest(runs_override=5, config=tutorial_config()), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "sampler" in err.value.details()
        assert not (await stub.ListBatches(pb.ListBatchesRequest(), timeout=5)).batches
        async with store.db.execute("SELECT COUNT(*) FROM jobs") as cur:
            assert (await cur.fetchone())[0] == 0
    finally:
        await stop()
        await broken.stop(0)


async def test_latin_hypercube_is_refined_once_then_refuses_with_a_reason(scheduler):
    reply = await scheduler.SubmitBatch(pb.SubmitBatchRequest(runs_override=4, config=tutorial_config()), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id=reply.batch_id, runs=3), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("runs ")
    extended = await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id=reply.batch_id, runs=4), timeout=10)
    assert extended.batch.total_jobs == 8
    after = await jobs(scheduler, reply.batch_id)
    for name, spec in TUTORIAL["config"]["dispersions"].items():
        d = spec["distribution"]
        strata = sorted(int((params(j)[name] - d["min"]) / (d["max"] - d["min"]) * 8) for j in after)
        assert strata == list(range(8)), name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scheduler.ExtendBatch(pb.ExtendBatchRequest(batch_id=reply.batch_id, runs=8), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "already extended" in err.value.details()
