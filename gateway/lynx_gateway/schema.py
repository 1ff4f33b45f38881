"""JSON Schemas of the REST JSON, generated from the same descriptors and tables as lynx_common.rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from lynx_common.distributions import DISTRIBUTIONS, NO_LEVELS
from lynx_common.rest import (
    ALWAYS_SET,
    EMPTY_AS_NULL,
    ENUMS,
    FLATTEN,
    GROUPS,
    INT_RANGE,
    JSON_VALUES,
    KEYED_BY,
    MINIMUM,
    REQUIRED,
    SPECIAL,
    TIMESTAMP,
    F,
    is_sparse,
    rest_name,
)


@dataclass
class Schemas:
    """JSON Schemas of messages, collected as OpenAPI components (one per message)."""

    components: dict = field(default_factory=dict)

    def ref(self, desc: Descriptor) -> dict:
        """A $ref to the message's component, building it (and those it uses) on first use."""
        name = desc.name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion stops here
            self.components[name] = self.build(desc)
        return {"$ref": f"#/components/schemas/{name}"}

    def build(self, desc: Descriptor, skip: tuple[str, ...] = ()) -> dict:
        """The JSON Schema of one message (without a $ref to itself)."""
        if desc.full_name == "lynx.common.v1.Distribution":
            return self._distribution(desc)
        sparse = is_sparse(desc)
        group = GROUPS.get(desc.full_name)
        props: dict = {}
        grouped: dict = {}
        required = [] if sparse else [rest_name(fd) for fd in desc.fields if fd.name not in skip]
        for fd in desc.fields:
            if fd.name in skip:
                continue
            if fd.full_name in FLATTEN:
                inner = self.build(fd.message_type)
                props = {**inner["properties"], **props}
                required = [*inner["required"], *required]
                required.remove(fd.name)
                continue
            target = grouped if group and fd.name in group.fields else props
            target[rest_name(fd)] = self.field(fd)
        if group:
            for fd_name in group.fields:
                required.remove(rest_name(desc.fields_by_name[fd_name]))
            sub = {"type": "object", "properties": grouped, "required": list(grouped)}
            if group.present_if:
                sub["type"] = ["object", "null"]
            props = {group.key: sub, **props}
            required.insert(0, group.key)
        if sparse:
            required = [rest_name(fd) for fd in desc.fields if fd.full_name in REQUIRED and fd.name not in skip]
        out = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = list(dict.fromkeys(required))
        return out

    def _distribution(self, desc: Descriptor) -> dict:
        variants = []
        for kind, (required, optional) in DISTRIBUTIONS.items():
            props = {"type": {"const": kind}}
            for name in (*required, *optional):
                props[name] = self.field(desc.fields_by_name[name])
            if kind not in NO_LEVELS:
                props["levels"] = self.field(desc.fields_by_name["levels"])
            variants.append({"type": "object", "title": kind, "properties": props, "required": ["type", *required],
                             "additionalProperties": False})
        return {"oneOf": variants, "discriminator": {"propertyName": "type"}}

    def field(self, fd: FieldDescriptor) -> dict:
        """The JSON Schema of one field's REST value."""
        if fd.full_name in SPECIAL:
            return dict(SPECIAL[fd.full_name].schema)
        if fd.full_name in KEYED_BY:
            item = self.build(fd.message_type, skip=(KEYED_BY[fd.full_name],))
            out = {"type": "object", "additionalProperties": item}
            if fd.full_name in REQUIRED:
                out["minProperties"] = 1
            return out
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.value(fd.message_type.fields_by_name["value"])}
        if fd.is_repeated:
            return {"type": "array", "items": self.value(fd)}
        schema = self.value(fd)
        if is_sparse(fd.containing_type):
            return schema  # left out when unset
        nullable = (
            fd.type == F.TYPE_MESSAGE
            or (fd.has_presence and fd.type != F.TYPE_MESSAGE)
            or (fd.type == F.TYPE_ENUM and fd.full_name not in ALWAYS_SET)
            or fd.full_name in EMPTY_AS_NULL
        )
        return _nullable(schema) if nullable else schema

    def value(self, fd: FieldDescriptor) -> dict:
        """The JSON Schema of one value of the field (one item, when repeated)."""
        if fd.type == F.TYPE_ENUM:
            return {"enum": list(ENUMS[fd.enum_type.full_name].names)}
        if fd.type == F.TYPE_MESSAGE:
            name = fd.message_type.full_name
            if name == TIMESTAMP:
                return {"type": ["string", "null"], "format": "date-time"}
            if name in JSON_VALUES:
                return {}
            return self.ref(fd.message_type)
        if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return {"type": "number"}
        if fd.type == F.TYPE_BOOL:
            return {"type": "boolean"}
        if fd.type == F.TYPE_STRING:
            return {"type": "string"}
        if fd.type in INT_RANGE and is_sparse(fd.containing_type):  # what a request may carry
            lo, hi = INT_RANGE[fd.type]
            return {"type": "integer", "minimum": max(lo, MINIMUM.get(fd.full_name, lo)), "maximum": hi}
        if fd.type in INT_RANGE:
            return {"type": "integer"}
        return {"type": "string", "contentEncoding": "base64"}


def _nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return {**schema, "type": [kinds, "null"]}
    if isinstance(kinds, list) and "null" not in kinds:
        return {**schema, "type": [*kinds, "null"]}
    return schema
