"""Which publishing errors the outbox relay waits out, and which make it park a tenant's rows."""

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from hookstream_api.relay import is_transient


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError(),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError(),
        asyncpg.CannotConnectNowError(),
    ],
)
def test_outages_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        MessageSizeTooLargeError(),
        RecordListTooLargeError(),
        RecordTooLargeError(),
        ValueError("bad data in a row"),
        asyncpg.DataError(),
    ],
)
def test_a_set_that_fails_the_same_way_every_time_is_parked(error: Exception) -> None:
    assert not is_transient(error)
