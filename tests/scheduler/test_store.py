"""The scheduler's SQLite store: half-submitted batches are dropped; sample chunks keep their jobs' parameters."""

from __future__ import annotations

import uuid

from lynx.common.v1 import parameters_pb2 as ppb
from lynx_scheduler import policy
from lynx_scheduler.columns import SampleCache
from lynx_scheduler.rows import BatchRow
from lynx_scheduler.store import Store


def _batch(batch_id: str) -> BatchRow:
    return BatchRow(batch_id, "b", b"", 1, 0, "basilisk", "basilisk", 0, 2, False, 1.0, None, None)


def _chunk(first: int, n: int) -> ppb.RunColumns:
    runs = ppb.RunColumns(run_ids=range(first, first + n), seeds=[1000 + i for i in range(first, first + n)])
    runs.parameters.add(name="x").numbers.values.extend(float(i) / 2 for i in range(first, first + n))
    runs.parameters.add(name="n").integers.values.extend(range(first, first + n))
    mode = runs.parameters.add(name="mode").choices
    mode.levels.add(text="safe")
    mode.levels.add(flag=True)
    mode.indices.extend(i % 2 for i in range(first, first + n))
    return runs


async def test_batches_whose_submission_died_are_deleted_at_start_up(tmp_path):
    store = await Store.open(tmp_path / "scheduler.db")
    try:
        await store.insert_hidden_batch(_batch("half"))
        runs = _chunk(0, 3)
        await store.add_sample("half", 0, runs.SerializeToString(), len(runs.run_ids))
        assert await store.active_batches() == []  # never leased while not ready
        assert await store.batch_jobs("half") == []  # nor listed
        assert await store.delete_unready_batches() == 1
        assert await store.get_batch("half") is None
        assert await store.db.execute_fetchall("SELECT COUNT(*) FROM jobs") == [(0,)]
        assert await store.db.execute_fetchall("SELECT COUNT(*) FROM samples") == [(0,)]
    finally:
        await store.close()


async def test_jobs_keep_their_seed_and_typed_parameters_across_chunks(tmp_path):
    store = await Store.open(tmp_path / "scheduler.db")
    try:
        await store.insert_hidden_batch(_batch("b"))
        for first, n in ((0, 3), (3, 2)):
            runs = _chunk(first, n)
            await store.add_sample("b", first, runs.SerializeToString(), len(runs.run_ids))
        await store.reveal_batch("b", 5)
        jobs = await store.batch_jobs("b")
        assert [(j.run_id, j.status) for j in jobs] == [(i, policy.PENDING) for i in range(5)]
        assert len({j.job_id for j in jobs}) == 5
        cache = SampleCache(store.sample)
        samples = [await cache.of(j) for j in jobs]
        assert [s.seed for s in samples] == [1000 + i for i in range(5)]
        params = [s.parameters for s in samples]
        assert params[4] == {"x": 2.0, "n": 4, "mode": "safe"}
        assert params[3] == {"x": 1.5, "n": 3, "mode": True}
        assert [type(p["n"]) for p in params] == [int] * 5
        assert (await store.get_batch("b")).counts == {"Pending": 5, "Running": 0, "Completed": 0, "Failed": 0,
                                                       "Cancelled": 0}
    finally:
        await store.close()


async def test_job_ids_are_distinct_uuid_shaped_and_ascend_with_the_run(tmp_path):
    store = await Store.open(tmp_path / "scheduler.db")
    try:
        for batch_id in ("a", "b"):  # the same run ids in two batches
            await store.insert_hidden_batch(_batch(batch_id))
            for first in (0, 1000):
                await store.add_sample(batch_id, first, _chunk(first, 1000).SerializeToString(), 1000)
            await store.reveal_batch(batch_id, 2000)
        jobs = {b: await store.batch_jobs(b) for b in ("a", "b")}
    finally:
        await store.close()
    ids = [j.job_id for b in ("a", "b") for j in jobs[b]]
    assert len(set(ids)) == 4000
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)
    assert [j.run_id for j in jobs["a"]] == list(range(2000))
    first_chunk = [j.job_id for j in jobs["a"][:1000]]
    assert first_chunk == sorted(first_chunk)
