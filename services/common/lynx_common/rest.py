"""The REST JSON of every proto message, and its JSON Schema, derived from the message descriptors.

One definition: a message's JSON value, the parsing of a request body and the JSON Schema in the
OpenAPI document all walk the same descriptors. Where the public REST shape differs from the proto
(the tutorial's names and groupings), the difference is declared once, in the tables below, and
all three follow it. Enum values show as their REST words from `lynx_common.names`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from lynx_common import names
from lynx_common.errors import ValidationError

F = FieldDescriptor
INT_RANGE = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1), F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1), F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
ENUMS = {n.descriptor.full_name: n for n in (names.JOB_STATUS, names.BATCH_STATUS, names.RUNNER_STATUS,
                                             names.TERMINATION_REASON, names.ATTEMPT_OUTCOME)}
TIMESTAMP = "google.protobuf.Timestamp"
JSON_VALUES = ("google.protobuf.ListValue", "google.protobuf.Value", "google.protobuf.Struct")

# --- Where REST differs from the proto (field full names) -------------------------------------
RENAMES = {
    "lynx.scheduler.v1.Job.attempts": "attempt_count",
    "lynx.scheduler.v1.Job.attempt_history": "attempts",
    "lynx.scheduler.v1.JobResult.termination_variable": "variable",
    "lynx.scheduler.v1.JobResult.termination_condition": "condition",
    "lynx.scheduler.v1.JobResult.termination_value": "value",
    "lynx.scheduler.v1.PreviewResponse.run_config_json": "run_configs",
    "lynx.scheduler.v1.Artifact.size_bytes": "size",
}
# Enums the scheduler always sets (others show UNSPECIFIED as null).
ALWAYS_SET = {"lynx.scheduler.v1.Batch.status", "lynx.scheduler.v1.Job.status", "lynx.scheduler.v1.Runner.status"}
# An empty string shows as null.
EMPTY_AS_NULL = {"lynx.scheduler.v1.Batch.status_message", "lynx.scheduler.v1.Job.runner_id",
                 "lynx.scheduler.v1.Attempt.runner_id"}
# Repeated messages shown as an object keyed by one of their fields (the key leaves the item).
KEYED_BY = {"lynx.common.v1.BatchConfig.dispersions": "name", "lynx.telemetry.v1.QueryResponse.series": "variable"}
# A message field whose JSON is merged into its parent's (the parent's own fields win).
FLATTEN = {"lynx.scheduler.v1.ExtendBatchResponse.batch", "lynx.scheduler.v1.RerunFailedResponse.batch",
           "lynx.scheduler.v1.CancelBatchResponse.batch"}
# Request fields that must be given, and bounds that the gateway checks itself.
REQUIRED = {"lynx.scheduler.v1.SubmitBatchRequest.config", "lynx.scheduler.v1.PreviewRequest.config",
            "lynx.scheduler.v1.ExtendBatchRequest.runs", "lynx.common.v1.BatchConfig.dispersions",
            "lynx.common.v1.Dispersion.distribution", "lynx.common.v1.Distribution.type",
            "lynx.common.v1.TerminationCondition.variable", "lynx.common.v1.TerminationCondition.condition"}
MINIMUM = {"lynx.scheduler.v1.SubmitBatchRequest.runs_override": 1, "lynx.scheduler.v1.PreviewRequest.runs_override": 1,
           "lynx.scheduler.v1.PreviewRequest.limit": 1, "lynx.scheduler.v1.ExtendBatchRequest.runs": 1,
           "lynx.common.v1.MonteCarlo.runs": 1}


@dataclass(frozen=True)
class Group:
    """Fields of a message shown together under one key; null when `present_if` is empty."""

    key: str
    fields: tuple[str, ...]
    present_if: str = ""


GROUPS = {
    "lynx.scheduler.v1.Batch": Group("batch", ("batch_id", "name", "status", "total_jobs", "seed", "created_at",
                                               "started_at", "finished_at", "config")),
    "lynx.scheduler.v1.JobResult": Group("termination", ("termination_variable", "termination_condition",
                                                         "termination_value"), present_if="termination_variable"),
}



@dataclass(frozen=True)
class Special:
    """A field whose REST value is computed, with its JSON Schema."""

    to_json: object
    schema: dict
    from_json: object = None


def _counts(enum: names.EnumNames, key: str, every: bool):
    def convert(items) -> dict:
        seen = {enum.name(getattr(i, key)): i.count for i in items}
        if every:
            return {n: seen.get(n, 0) for n in enum.names}
        return dict(sorted((n, c) for n, c in seen.items() if n))
    return convert


def _parameter_value(value) -> object:
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind else None


_SCALAR = {"type": ["number", "string", "boolean"]}
_RUN_CONFIG = {"type": "object", "required": ["run_id", "parameters", "metadata"], "properties": {
    "run_id": {"type": "integer"},
    "parameters": {"type": "object", "additionalProperties": _SCALAR,
                   "description": "Sampled values in declared order; integers stay integers, strings stay strings."},
    "metadata": {"type": "object", "description": "simulation_name, simulation_version, duration_minutes, "
                 "sampling_method, generated_at, batch_seed, seed (and batch_id, job_id on a runner)"}}}
_REASONS = list(names.TERMINATION_REASON.names)
SPECIAL = {
    "lynx.scheduler.v1.Batch.jobs_by_status": Special(
        _counts(names.JOB_STATUS, "status", every=True),
        {"type": "object", "properties": {n: {"type": "integer"} for n in names.JOB_STATUS.names},
         "required": list(names.JOB_STATUS.names), "additionalProperties": False}),
    "lynx.scheduler.v1.Batch.failures_by_reason": Special(
        _counts(names.TERMINATION_REASON, "reason", every=False),
        {"type": "object", "propertyNames": {"enum": _REASONS}, "additionalProperties": {"type": "integer"}}),
    "lynx.scheduler.v1.Job.parameters": Special(
        lambda items: {p.name: _parameter_value(p.value) for p in items},
        {"type": "object", "additionalProperties": _SCALAR,
         "description": "Sampled values in declared order; integers stay integers, strings stay strings."}),
    "lynx.scheduler.v1.JobResult.outputs": Special(
        lambda items: {p.name: _parameter_value(p.value) for p in items},
        {"type": "object", "additionalProperties": _SCALAR,
         "description": "Scalar outputs of summary.json, nested keys flattened with dots, in file order."}),
    "lynx.scheduler.v1.PreviewResponse.run_config_json": Special(
        lambda docs: [json.loads(d) for d in docs], {"type": "array", "items": _RUN_CONFIG}),
    "lynx.common.v1.Correlation.matrix": Special(
        lambda m: json_format.MessageToDict(m),
        {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
         "description": "Square rank-correlation matrix, a list of rows"},
        lambda value, path: _parse_json_value("google.protobuf.ListValue", value, path)),
    "lynx.common.v1.Distribution.values": Special(
        lambda vs: [json_format.MessageToDict(v) for v in vs],
        {"type": "array", "items": {"type": ["number", "string"]}, "minItems": 1}),
}
# Messages shown sparsely, like the document the user submitted: unset fields are left out.
SPARSE_PACKAGE = "lynx.common.v1."


def rest_name(fd: FieldDescriptor) -> str:
    """The field's name in the REST JSON."""
    return RENAMES.get(fd.full_name, fd.name)


def is_sparse(desc: Descriptor) -> bool:
    """Configs and request bodies: only REQUIRED fields must be given (and unset ones are left out)."""
    return desc.full_name.startswith(SPARSE_PACKAGE) or desc.name.endswith("Request")


def _is_set(msg: Message, fd: FieldDescriptor) -> bool:
    if fd.is_repeated:
        return len(getattr(msg, fd.name)) > 0
    if fd.has_presence:
        return msg.HasField(fd.name)
    return getattr(msg, fd.name) != fd.default_value


def _iso(ts) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _single(fd: FieldDescriptor, value) -> object:
    if fd.type == F.TYPE_ENUM:
        return ENUMS[fd.enum_type.full_name].name(value) or None
    if fd.type == F.TYPE_MESSAGE:
        name = fd.message_type.full_name
        if name == TIMESTAMP:
            return _iso(value)
        if name in JSON_VALUES:
            return json_format.MessageToDict(value)
        return to_json(value)
    if fd.type == F.TYPE_DOUBLE or fd.type == F.TYPE_FLOAT:
        return value if math.isfinite(value) else None
    if fd.full_name in EMPTY_AS_NULL and not value:
        return None
    return value


def _field_json(msg: Message, fd: FieldDescriptor) -> object:
    value = getattr(msg, fd.name)
    if fd.full_name in SPECIAL:
        return SPECIAL[fd.full_name].to_json(value)
    if fd.full_name in KEYED_BY:
        key = KEYED_BY[fd.full_name]
        return {getattr(item, key): {k: v for k, v in to_json(item).items() if k != key} for item in value}
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        value_fd = fd.message_type.fields_by_name["value"]
        return {k: _single(value_fd, v) for k, v in value.items()}
    if fd.is_repeated:
        return [_single(fd, v) for v in value]
    if fd.type == F.TYPE_MESSAGE and fd.message_type.full_name not in (TIMESTAMP, *JSON_VALUES):
        return to_json(value) if msg.HasField(fd.name) else None
    if fd.has_presence and not msg.HasField(fd.name):
        return None
    return _single(fd, value)


def to_json(msg: Message) -> dict:
    """The REST JSON of a message."""
    desc = msg.DESCRIPTOR
    sparse = is_sparse(desc)
    group = GROUPS.get(desc.full_name)
    out: dict = {}
    grouped: dict = {}
    for fd in desc.fields:
        if fd.full_name in FLATTEN:
            out.update(to_json(getattr(msg, fd.name)))
            continue
        if sparse and not _is_set(msg, fd):
            continue
        target = grouped if group and fd.name in group.fields else out
        target[rest_name(fd)] = _field_json(msg, fd)
    if group:
        present = not group.present_if or getattr(msg, group.present_if)
        out = {group.key: grouped if present else None, **out}
    return out


# --- Parsing request bodies --------------------------------------------------------------------
def _kind(value: object) -> str:
    return type(value).__name__.replace("dict", "object").replace("list", "array").replace("str", "string")


def _parse_json_value(type_name: str, value: object, path: str) -> object:
    expected = {"google.protobuf.ListValue": list, "google.protobuf.Struct": dict}.get(type_name)
    if expected and not isinstance(value, expected):
        raise ValidationError(path, f"must be {'an array' if expected is list else 'an object'}, got {_kind(value)}")
    return value


def _parse_single(fd: FieldDescriptor, value: object, path: str) -> object:
    if fd.type == F.TYPE_MESSAGE:
        name = fd.message_type.full_name
        if name in JSON_VALUES:
            return _parse_json_value(name, value, path)
        return from_json(fd.message_type, value, path)
    if fd.type == F.TYPE_STRING:
        if not isinstance(value, str):
            raise ValidationError(path, f"must be a string, got {value!r}")
        return value
    if fd.type == F.TYPE_BOOL:
        if not isinstance(value, bool):
            raise ValidationError(path, f"must be true or false, got {value!r}")
        return value
    if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(path, f"must be a finite number, got {value!r}")
        return float(value)
    if fd.type in INT_RANGE:
        lo, hi = INT_RANGE[fd.type]
        lo = max(lo, MINIMUM.get(fd.full_name, lo))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValidationError(path, f"must be a whole number from {lo} to {hi}, got {value!r}")
        return value
    raise ValidationError(path, "is not accepted in a request")


def from_json(desc: Descriptor, document: object, path: str = "", skip: tuple[str, ...] = ()) -> dict:
    """Check a REST document against a message and return the dict json_format.ParseDict takes.

    Errors name the field's dotted path (`config.monte_carlo.runs`). `skip` fields come from elsewhere
    (the URL path) and are not accepted in the body."""
    prefix = f"{path}." if path else ""
    if not isinstance(document, dict):
        raise ValidationError(path or "body", f"must be a JSON object, got {_kind(document)}")
    fields = {rest_name(fd): fd for fd in desc.fields if fd.name not in skip}
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise ValidationError(prefix + unknown[0], f"is not a field of {path or 'the body'} ({', '.join(fields)})")
    out: dict = {}
    for name, fd in fields.items():
        value = document.get(name)
        where = prefix + name
        if value is None:
            if fd.full_name in REQUIRED:
                raise ValidationError(where, "is required")
            continue
        if fd.full_name in SPECIAL and SPECIAL[fd.full_name].from_json:
            out[fd.name] = SPECIAL[fd.full_name].from_json(value, where)
        elif fd.full_name in KEYED_BY:
            key = KEYED_BY[fd.full_name]
            if not isinstance(value, dict):
                raise ValidationError(where, f"must be an object keyed by {key}, got {_kind(value)}")
            out[fd.name] = [{key: k, **from_json(fd.message_type, v, f"{where}.{k}", skip=(key,))}
                            for k, v in value.items()]
        elif fd.is_repeated:
            if not isinstance(value, list):
                raise ValidationError(where, f"must be an array, got {_kind(value)}")
            out[fd.name] = [_parse_single(fd, v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            out[fd.name] = _parse_single(fd, value, where)
    return out


def parse(message: Message, document: object, path: str = "", skip: tuple[str, ...] = ()) -> Message:
    """Fill `message` from a REST document (see from_json); returns it."""
    return json_format.ParseDict(from_json(message.DESCRIPTOR, document, path, skip), message)
