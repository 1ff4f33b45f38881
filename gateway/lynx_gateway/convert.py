"""REST request bodies to proto requests, and proto replies to REST JSON (through lynx_common.rest)."""

from __future__ import annotations

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx_common.rest import parse, to_json


def config_from_json(document: object) -> cfg.BatchConfig:
    """Parse a REST `config` object (dispersions keyed by name); errors name `config.<path>`."""
    return parse(cfg.BatchConfig(), document, "config")


def submit_request(body: object) -> pb.SubmitBatchRequest:
    """The POST /jobs body {name, runs_override, config}."""
    return parse(pb.SubmitBatchRequest(), body)


def preview_request(body: object) -> pb.PreviewRequest:
    """The POST /preview body {runs_override, limit, config}."""
    return parse(pb.PreviewRequest(), body)


def extend_request(batch_id: str, body: object) -> pb.ExtendBatchRequest:
    """The POST /batches/{id}/extend body {runs}; the batch comes from the URL."""
    return parse(pb.ExtendBatchRequest(batch_id=batch_id), body, skip=("batch_id",))


def preview_json(chunks: list[pb.PreviewResponse]) -> dict:
    """POST /preview: the first chunk's seed, total and caveats, with every chunk's run configs."""
    merged = pb.PreviewResponse()
    if chunks:
        merged.CopyFrom(chunks[0])
        for chunk in chunks[1:]:
            merged.run_config_json.extend(chunk.run_config_json)
    return to_json(merged)


def telemetry_json(job_id: str, reply: tel_pb.QueryResponse) -> dict:
    """GET /jobs/{id}/telemetry: the job and one series per variable (every page merged)."""
    out = {"job_id": job_id, **to_json(reply)}
    out.pop("next_page_token", None)
    return out


def merge_telemetry_page(into: tel_pb.QueryResponse, page: tel_pb.QueryResponse) -> None:
    """Append a Query page; a series continued from the previous page is extended."""
    for series in page.series:
        if into.series and into.series[-1].variable == series.variable:
            into.series[-1].timestamps_ns.extend(series.timestamps_ns)
            into.series[-1].values.extend(series.values)
        else:
            into.series.append(series)
