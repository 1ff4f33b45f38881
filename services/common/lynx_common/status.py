"""Rich gRPC errors: bad input travels as google.rpc.BadRequest field violations, not as text."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from lynx_common.errors import ValidationError

DETAILS_KEY = "grpc-status-details-bin"


def invalid_argument(field: str, problem: str) -> grpc.Status:
    """An INVALID_ARGUMENT status whose details carry one BadRequest field violation.

    The status message stays the readable "<field> <problem>" text for clients that read only it."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field, description=problem)]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=f"{field} {problem}".strip())
    status.details.add().Pack(bad_request)
    return rpc_status.to_status(status)


async def abort_invalid(context: grpc.aio.ServicerContext, field: str, problem: str) -> None:
    """Abort the call with INVALID_ARGUMENT naming `field` in structure (raises)."""
    await context.abort_with_status(invalid_argument(field, problem))


async def abort_validation(context: grpc.aio.ServicerContext, exc: ValidationError) -> None:
    """Abort the call with a core ValidationError's field and problem (raises)."""
    await abort_invalid(context, exc.field, exc.problem)


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest violation in a failed call's details; [] if none."""
    metadata = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in metadata or ():
        if key != DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        out = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                out.extend((v.field, v.description) for v in bad_request.field_violations)
        return out
    return []


def validation_error(error: grpc.RpcError) -> ValidationError | None:
    """The first field violation of a failed call as a ValidationError, or None when it has none."""
    violations = field_violations(error)
    return ValidationError(*violations[0]) if violations else None
