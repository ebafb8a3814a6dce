"""The fault suite's servers restart on the ports they had: a block of this checkout's own,
below the ephemeral range, and free ports only when that block is taken."""

import socket

import pytest

from hookstream_dev import infra

pytestmark = pytest.mark.faults


def test_the_block_follows_the_checkouts_kafka_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKSTREAM_FAULT_PORTS", raising=False)
    monkeypatch.setenv("HOOKSTREAM_KAFKA_PORT", "23092")
    assert infra.fault_ports(10, 7) == list(range(23202, 23209))


def test_a_taken_block_gives_free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("HOOKSTREAM_FAULT_PORTS", str(port - 1))
        ports = infra.fault_ports(0, 3)
    assert port not in ports
    assert len(set(ports)) == 3
