"""The REST names of the contract's enums, derived from the protos (one definition).

Job and batch statuses show as the tutorial's capitalised words ("Pending", "Completed");
termination reasons and attempt outcomes as lower-case words ("early_termination",
"runner_lost"). Each name is the enum value's name without its prefix, so adding a value
to a proto adds its REST name with no other change."""

from __future__ import annotations

from google.protobuf.descriptor import EnumDescriptor

from lynx.auth.v1 import auth_service_pb2 as auth_pb
from lynx.scheduler.v1 import scheduler_service_pb2 as pb


class EnumNames:
    """Two-way map between one proto enum's values and their REST names (UNSPECIFIED excluded)."""

    def __init__(self, descriptor: EnumDescriptor, capitalise: bool) -> None:
        prefix = descriptor.values[0].name.removesuffix("UNSPECIFIED")
        self.descriptor = descriptor
        self.by_value: dict[int, str] = {}
        for v in descriptor.values[1:]:
            word = v.name.removeprefix(prefix).lower()
            self.by_value[v.number] = word.capitalize() if capitalise else word
        self.by_name: dict[str, int] = {name: value for value, name in self.by_value.items()}
        self.names: tuple[str, ...] = tuple(self.by_value.values())

    def name(self, value: int) -> str:
        """The REST name of `value`; "" for UNSPECIFIED (or a value this build does not know)."""
        return self.by_value.get(value, "")

    def value(self, name: str) -> int:
        """The enum value of a REST name; 0 (UNSPECIFIED) for "" and unknown names."""
        return self.by_name.get(name, 0)


JOB_STATUS = EnumNames(pb.JobStatus.DESCRIPTOR, capitalise=True)
BATCH_STATUS = EnumNames(pb.BatchStatus.DESCRIPTOR, capitalise=True)
RUNNER_STATUS = EnumNames(pb.RunnerStatus.DESCRIPTOR, capitalise=True)
TERMINATION_REASON = EnumNames(pb.TerminationReason.DESCRIPTOR, capitalise=False)
ATTEMPT_OUTCOME = EnumNames(pb.AttemptOutcome.DESCRIPTOR, capitalise=False)
ROLE = EnumNames(auth_pb.Role.DESCRIPTOR, capitalise=False)  # API token roles: read, submit, admin, runner
