"""A fast read of StreamRuns pages: the page's bytes parsed (in C) into a view of Run whose `parameters` and
`outputs` are singular messages instead of repeated Parameter. Protobuf merges repeated occurrences of a singular
message field, so every Parameter of a run lands in one message: all names in one repeated string and all values
in one repeated field per kind. A run whose values are all one kind (all numbers, say) is then read with a few
calls instead of several per value; a run mixing kinds is read from the Run message as usual."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from lynx.scheduler.v1 import scheduler_service_pb2 as pb

F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "lynx_results.view"
KINDS = ("number", "integer", "text", "flag")  # ParameterValue's oneof, in field-number order


def _page_class():
    f = descriptor_pb2.FileDescriptorProto(name="lynx_results/run_view.proto", package=_PACKAGE, syntax="proto3")
    values = f.message_type.add(name="Values")
    for number, (name, kind) in enumerate(
        zip(KINDS, (F.TYPE_DOUBLE, F.TYPE_INT64, F.TYPE_STRING, F.TYPE_BOOL), strict=True), start=1
    ):
        values.field.add(name=name, number=number, type=kind, label=F.LABEL_REPEATED)
    params = f.message_type.add(name="Params")
    params.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    params.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Values")
    ts = f.message_type.add(name="Timestamp")
    ts.field.add(name="seconds", number=1, type=F.TYPE_INT64)
    ts.field.add(name="nanos", number=2, type=F.TYPE_INT32)
    run = f.message_type.add()
    pb.Run.DESCRIPTOR.CopyToProto(run)
    for field in run.field:
        if field.type == F.TYPE_ENUM:  # same varint on the wire
            field.type = F.TYPE_INT32
            field.ClearField("type_name")
        elif field.number in (pb.Run.PARAMETERS_FIELD_NUMBER, pb.Run.OUTPUTS_FIELD_NUMBER):
            field.label, field.type_name = F.LABEL_OPTIONAL, f".{_PACKAGE}.Params"
        elif field.type == F.TYPE_MESSAGE:
            assert field.type_name == ".google.protobuf.Timestamp", field.type_name
            field.type_name = f".{_PACKAGE}.Timestamp"
    page = f.message_type.add(name="Page")
    page.field.add(name="runs", number=1, type=F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Run", label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Page"))


Page = _page_class()


def page_view(page: pb.StreamRunsResponse | bytes):
    """The view of a page (its bytes, or the message, serialized again in C)."""
    return Page.FromString(page if isinstance(page, bytes) else page.SerializeToString())


def uniform(params) -> tuple[str, tuple, object] | None:
    """(kind, names, values) of a run's merged parameters or outputs when every value is of one kind; None when
    they mix kinds (the caller reads that run's Parameters instead). No values: kind "number", nothing."""
    names = tuple(params.name)
    values = params.value
    for kind in KINDS:
        column = getattr(values, kind)
        if len(column) == len(names):
            return kind, names, column
        if len(column):
            return None
    return ("number", (), ()) if not names else None


def output_kinds(page: pb.StreamRunsResponse | bytes, kinds: dict[str, set[str]]) -> None:
    """Add the output names of a page and the kinds of their values to `kinds`."""
    originals = None
    for i, run in enumerate(page_view(page).runs):
        merged = uniform(run.outputs)
        if merged is not None:
            for name in merged[1]:
                kinds.setdefault(name, set()).add(merged[0])
            continue
        if originals is None:
            originals = (pb.StreamRunsResponse.FromString(page) if isinstance(page, bytes) else page).runs
        for p in originals[i].outputs:
            kinds.setdefault(p.name, set()).add(p.value.WhichOneof("kind") or "number")
