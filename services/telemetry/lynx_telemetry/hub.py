"""In-process fan-out of ingested samples to live Subscribe streams.

Publish hands every stored batch to `Hub.publish()`, which never waits: each
subscriber has a bounded asyncio queue of `QUEUE_MESSAGES` messages, and when a
slow subscriber's queue is full the new message is dropped for that subscriber
alone (counted in `Subscription.dropped` and logged), so ingest never stalls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from lynx.telemetry.v1 import telemetry_service_pb2 as pb

log = logging.getLogger(__name__)
QUEUE_MESSAGES = 256  # SubscribeResponse messages buffered per subscriber


class Subscription:
    """One Subscribe stream: its filter and its bounded queue."""

    def __init__(self, batch_id: str, job_id: str, variables: Sequence[str], maxsize: int) -> None:
        self.batch_id = batch_id
        self.job_id = job_id
        self.variables = tuple(dict.fromkeys(variables))
        self.queue: asyncio.Queue[pb.SubscribeResponse] = asyncio.Queue(maxsize)
        self.dropped = 0  # samples not delivered because the queue was full

    def wants(self, job_id: str, batch_id: str) -> bool:
        """Whether samples of this job and batch match the subscription."""
        return (not self.job_id or self.job_id == job_id) and (not self.batch_id or self.batch_id == batch_id)

    def offer(self, response: pb.SubscribeResponse) -> None:
        """Queue a message without waiting; drop it when the subscriber is behind."""
        try:
            self.queue.put_nowait(response)
        except asyncio.QueueFull:
            if not self.dropped:
                log.warning("subscriber to batch %r job %r is too slow; dropping samples",
                            self.batch_id, self.job_id)
            self.dropped += len(response.samples)


class Hub:
    """The live subscriptions of one telemetry-ingest process."""

    def __init__(self, queue_messages: int = QUEUE_MESSAGES) -> None:
        self.queue_messages = queue_messages
        self.subscriptions: set[Subscription] = set()

    def subscribe(self, batch_id: str, job_id: str, variables: Sequence[str]) -> Subscription:
        """Register a subscription; it receives what is published from now on."""
        sub = Subscription(batch_id, job_id, variables, self.queue_messages)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription (its stream ended)."""
        self.subscriptions.discard(sub)

    def publish(self, job_id: str, batch_id: str, samples: Sequence[pb.TelemetrySample]) -> None:
        """Offer stored samples of one job to every matching subscription; never waits."""
        if not samples or not self.subscriptions:
            return
        unfiltered: pb.SubscribeResponse | None = None
        for sub in list(self.subscriptions):
            if not sub.wants(job_id, batch_id):
                continue
            if sub.variables:
                response = _filtered(job_id, batch_id, samples, sub.variables)
                if response is None:
                    continue
            else:
                if unfiltered is None:
                    unfiltered = pb.SubscribeResponse(job_id=job_id, batch_id=batch_id, samples=samples)
                response = unfiltered
            sub.offer(response)


def _filtered(
    job_id: str, batch_id: str, samples: Sequence[pb.TelemetrySample], variables: tuple[str, ...]
) -> pb.SubscribeResponse | None:
    """A message with only `variables` of each sample (samples with none of them left out), or None."""
    response = pb.SubscribeResponse(job_id=job_id, batch_id=batch_id)
    for sample in samples:
        values = sample.values
        chosen = {name: values[name] for name in variables if name in values}
        if chosen:
            response.samples.add(timestamp_ns=sample.timestamp_ns, values=chosen)
    return response if response.samples else None
