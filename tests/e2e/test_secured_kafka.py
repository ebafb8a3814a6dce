"""Hookstream on a secured Kafka, as managed clusters run it (issue 19, point 4).

One private broker from the project's jars carries both secured listeners: SASL_SSL with a
SCRAM-SHA-512 user, and SSL that requires a client certificate. Its certificates are made here
(trustme). For each listener, an event published with the SDK reaches the HTTPS receiver
through all the services; with wrong credentials or an untrusted broker certificate the
services stay up and `/readyz` says why in one word, and the log says what to fix.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme

from hookstream_client import AsyncClient
from hookstream_common.resilience import FIXES
from hookstream_common.sdk import EventPublisher
from hookstream_dev import infra
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet, free_port, kafka_security_of
from support import (
    carrying,
    installation,
    new_tenant,
    private_dir,
    receiver_url,
    wait_routed,
    wait_until,
)

APP_CREATED = "com.qlik.v1.app.created"
USER, PASSWORD = "hookstream", "scram-password-of-the-test"


@dataclass(frozen=True)
class Pki:
    """The PEM files of the test: the broker's CA, a client certificate it signed, and a CA
    and client certificate the broker has never heard of."""

    ca: Path
    client_cert: Path
    client_key: Path
    stranger_ca: Path
    stranger_cert: Path
    stranger_key: Path
    broker_keystore: Path
    password_file: Path


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    """This module's broker and certificates."""
    with private_dir("secured-kafka") as folder:
        yield folder


@pytest.fixture(scope="module")
def pki(root: Path) -> Pki:
    ca, stranger = trustme.CA(), trustme.CA()
    client = ca.issue_cert("hookstream-client")
    intruder = stranger.issue_cert("hookstream-client")
    files = Pki(
        *(root / name for name in ("ca", "c.crt", "c.key", "s-ca", "s.crt", "s.key")),
        broker_keystore=root / "broker.pem",
        password_file=root / "password",
    )
    ca.cert_pem.write_to_path(files.ca)
    client.cert_chain_pems[0].write_to_path(files.client_cert)
    client.private_key_pem.write_to_path(files.client_key)
    stranger.cert_pem.write_to_path(files.stranger_ca)
    intruder.cert_chain_pems[0].write_to_path(files.stranger_cert)
    intruder.private_key_pem.write_to_path(files.stranger_key)
    broker = ca.issue_cert("localhost", "127.0.0.1")
    infra.SecureListeners.write_keystore(
        files.broker_keystore,
        broker.private_key_pem.bytes(),
        [pem.bytes() for pem in broker.cert_chain_pems],
    )
    files.password_file.write_text(f"{PASSWORD}\n")  # as a mounted Kubernetes secret may end
    return files


@pytest.fixture(scope="module")
def secured_kafka(pki: Pki, root: Path) -> Iterator[infra.SecureListeners]:
    """A broker of this module with both secured listeners; gone with the module."""
    listeners = infra.SecureListeners(
        free_port(), free_port(), pki.broker_keystore, pki.ca, ((USER, PASSWORD),)
    )
    server = infra.KafkaServer.under(root / "broker", free_port(), free_port(), listeners)
    server.wait_ready(server.start())
    yield listeners
    server.kill()


def _scram(listeners: infra.SecureListeners, pki: Pki, **changes: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{listeners.sasl_ssl_port}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD_FILE": str(pki.password_file),
        "KAFKA_SSL_CAFILE": str(pki.ca),
        **changes,
    }


def _mtls(listeners: infra.SecureListeners, pki: Pki, **changes: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{listeners.mtls_port}",
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(pki.ca),
        "KAFKA_SSL_CERTFILE": str(pki.client_cert),
        "KAFKA_SSL_KEYFILE": str(pki.client_key),
        **changes,
    }


LISTENERS = {"scram": _scram, "mtls": _mtls}


async def _delivered_over(
    listener: str, kafka: dict[str, str], env: dict[str, str], receiver: Receiver, token: Any
) -> None:
    """An installation of its own on the listener; one event from the SDK reaches the receiver."""
    services = ("matcher", "api", "dispatcher")
    async with installation({**env, **kafka}, services, listener) as stack:
        tenant, path = new_tenant(), f"/secured/{listener}"
        async with AsyncClient(stack.url("api"), token(tenant, "u1"), timeout=15) as client:
            body = {"name": listener, "url": receiver_url(receiver, path)}
            webhook = await client.create_webhook({**body, "eventTypes": [APP_CREATED]})
        await wait_routed(stack, tenant, {webhook.id})
        event = sample_event(APP_CREATED, tenant, "u1")
        async with EventPublisher(
            kafka["KAFKA_BOOTSTRAP_SERVERS"],
            stack.env["HOOKSTREAM_TOPIC_PREFIX"],
            kafka_security_of(kafka),
        ) as publisher:
            await publisher.publish(event)
        await wait_until(lambda: carrying(receiver, path, event), timeout=30)


async def test_events_are_delivered_over_both_secured_listeners(
    secured_kafka: infra.SecureListeners,
    pki: Pki,
    settings_env: dict[str, str],
    receiver: Receiver,
    token: Callable[..., str],
) -> None:
    """Both installations at once: most of their time is waiting for group joins."""
    async with asyncio.TaskGroup() as group:
        for name, connect in LISTENERS.items():
            kafka = connect(secured_kafka, pki)
            group.create_task(_delivered_over(name, kafka, settings_env, receiver, token))


@pytest.fixture
async def refused(
    secured_kafka: infra.SecureListeners,
    pki: Pki,
    settings_env: dict[str, str],
    root: Path,
) -> AsyncIterator[ServiceSet]:
    """Matchers that cannot connect: a wrong password, a client certificate from a CA the
    broker does not trust, and a CA that does not sign the broker's certificate."""
    wrong = root / "wrong-password"
    wrong.write_text("not-the-password")
    instances = {
        "matcher": _scram(secured_kafka, pki, KAFKA_SASL_PASSWORD_FILE=str(wrong)),
        "matcher-2": _mtls(
            secured_kafka,
            pki,
            KAFKA_SSL_CERTFILE=str(pki.stranger_cert),
            KAFKA_SSL_KEYFILE=str(pki.stranger_key),
        ),
        "matcher-3": _scram(secured_kafka, pki, KAFKA_SSL_CAFILE=str(pki.stranger_ca)),
    }
    services = ServiceSet(
        env={**settings_env, "HOOKSTREAM_TOPIC_PREFIX": "refused"},
        ports={name: free_port() for name in instances},
        log_dir=root / "refused-logs",
        instance_env=instances,
    )
    try:
        for name in instances:
            services.start(name, wait=False)
        yield services
    finally:
        services.stop_all()


async def test_wrong_credentials_keep_the_service_up_and_unready_with_the_reason(
    refused: ServiceSet,
) -> None:
    expected = {"matcher": "auth", "matcher-2": "auth", "matcher-3": "tls"}

    async def reasons() -> dict[str, Any] | None:
        found = {}
        async with httpx.AsyncClient(timeout=2) as client:
            for name in expected:
                try:
                    response = await client.get(f"{refused.url(name)}/readyz")
                except httpx.TransportError:
                    return None
                assert response.status_code == 503
                found[name] = response.json()["reasons"].get("kafka")
        return found if found == expected else None

    await wait_until(reasons, timeout=30)
    for name, reason in expected.items():
        assert refused.pid(name) is not None, f"{name} exited:\n{refused.tail(name)}"
        text = await asyncio.to_thread(Path(refused.spec(name).log).read_text)
        assert PASSWORD not in text and "not-the-password" not in text
        said = [orjson.loads(line) for line in text.splitlines() if '"reason"' in line]
        assert any(line["reason"] == reason and line["fix"] == FIXES[reason] for line in said)
