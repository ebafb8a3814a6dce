"""Dead letters: a record that can never be processed is parked with its reason, not retried.

Decision 10: the record goes to a dead-letter topic with why and where from (so a person can
find, fix and replay it), is counted and logged, and everything behind it moves on. Every dead
letter has one shape, whichever stage parked it (docs/operations.md, "Dead letters"): the value
is what could not be processed (cut to `SAMPLE_BYTES`), and the headers say why
(`hookstream-dlq-reason`), where from (`hookstream-source`) and which stage parked it
(`hookstream-stage`).
"""

import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from hookstream_common.resilience import keep_trying

log = structlog.get_logger(__name__)

PARKED = prometheus_client.Counter(
    "hookstream_dead_letters_total",
    "Records parked on a dead-letter topic, by the stage that read them.",
    ["stage"],
)
SAMPLE_BYTES = 64 * 1024
"""A parked value is cut to this size (the original length is kept in a header)."""

Header = tuple[str, bytes]


def source_of(record: ConsumerRecord) -> str:
    """Where a record came from: `<topic>/<partition>/<offset>`."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def dead_letter(
    value: bytes | None, source: str, stage: str, reason: str
) -> tuple[bytes, list[Header]]:
    """The value and headers of the dead letter for `value`, read at `source` by `stage`."""
    value = value or b""
    headers = [
        ("hookstream-dlq-reason", reason.encode()[:1024]),
        ("hookstream-source", source.encode()),
        ("hookstream-stage", stage.encode()),
    ]
    if len(value) > SAMPLE_BYTES:
        headers.append(("hookstream-truncated", str(len(value)).encode()))
        value = value[:SAMPLE_BYTES]
    return value, headers


def reason_of(error: BaseException | str) -> str:
    """A reason a person can act on: the error's class and message."""
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"


async def park(
    producer: AIOKafkaProducer,
    topic: str,
    record: ConsumerRecord,
    error: BaseException | str,
    stage: str,
) -> None:
    """Park a record read from Kafka (see `park_value`)."""
    await park_value(producer, topic, record.value, record.key, source_of(record), error, stage)


async def park_value(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    source: str,
    error: BaseException | str,
    stage: str,
) -> None:
    """Put the dead letter on `topic` and wait for the broker to have it (through any outage)."""
    reason = reason_of(error)
    letter, headers = dead_letter(value, source, stage, reason)
    PARKED.labels(stage).inc()
    log.warning(
        "record parked on the dead-letter topic",
        reason=reason,
        stage=stage,
        source=source,
        dead_letter_topic=topic,
    )
    await keep_trying(
        lambda: producer.send_and_wait(topic, letter, key=key, headers=headers),
        "Kafka (parking a record)",
    )
