"""Per-topic errors of admin responses are raised, except the ones that mean "already done"."""

import pytest
from aiokafka.errors import (
    PolicyViolationError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from hookstream_common.kafka import raise_topic_errors


def test_success_and_harmless_codes_pass() -> None:
    raise_topic_errors([("a", 0), ("b", TopicAlreadyExistsError.errno)], {TopicAlreadyExistsError})
    raise_topic_errors([("c", UnknownTopicOrPartitionError.errno)], {UnknownTopicOrPartitionError})


@pytest.mark.parametrize(
    ("code", "harmless"),
    [
        (PolicyViolationError.errno, {TopicAlreadyExistsError}),
        (TopicAlreadyExistsError.errno, {UnknownTopicOrPartitionError}),
    ],
)
def test_other_codes_raise_with_the_topic_name(code: int, harmless: set[type]) -> None:
    with pytest.raises(Exception, match="topic t-1"):
        raise_topic_errors([("ok", 0), ("t-1", code)], harmless)
