"""`keep_trying` with a time limit, as the SDK's `EventPublisher` starts its producer: retried
with backoff, and given up with the last error and what to check once the limit is reached."""

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from hookstream_common.resilience import Backoff, keep_trying

QUICK = 0.01


class FlakyStarter:
    """Fails `failures` times with aiokafka's bootstrap error, then returns a new client."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries = 0

    async def __call__(self) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9093)]")
        return f"client {self.tries}"


async def test_a_start_that_fails_twice_is_retried_until_it_succeeds() -> None:
    starter = FlakyStarter(failures=2)
    client = await keep_trying(starter, "Kafka (test)", Backoff(QUICK, QUICK), limit=5)
    assert (client, starter.tries) == ("client 3", 3)


async def test_after_the_limit_the_last_error_is_raised_with_what_to_check() -> None:
    starter = FlakyStarter(failures=1_000)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap") as raised:
        await keep_trying(starter, "Kafka (test)", Backoff(QUICK, QUICK), limit=0.2)
    assert loop.time() - began < 0.2 + 0.1
    assert starter.tries > 2
    assert raised.value.__notes__ == [
        "Kafka (test) still unavailable after 0.2 s: no answer: check the address, the network "
        "and that the server runs"
    ]


async def test_a_try_that_hangs_is_cut_at_the_limit() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError) as raised:
        await keep_trying(hangs, "Kafka (test)", limit=0.1)
    assert "still unavailable after 0.1 s" in raised.value.__notes__[0]


async def test_without_a_limit_errors_that_are_not_outages_are_not_retried() -> None:
    async def bug() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="not an outage"):
        await keep_trying(bug, "Kafka (test)", Backoff(QUICK, QUICK))
