"""Debian's Prometheus scraping a running stack: every target up, every dashboard query and
alert expression evaluates without error, and the key panels return data.

The stack is this module's own (a database and topic prefix of its own on the shared servers),
driven with deliveries, a failing receiver, a 410 (an auto-disable) and a poison event.
"""

import importlib.util
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from deploy_tools import DEPLOY, tool

from hookstream_common.kafka import client_options
from hookstream_common.sdk import EventPublisher
from hookstream_common.tokens import TENANT_ADMIN
from hookstream_dev import infra
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, ensure_tls
from hookstream_dev.stack import ServiceSet, free_port, service_environment
from hookstream_dev.tokens import mint_token
from support import (
    STATIC_HOSTS,
    bearer,
    fresh_database,
    new_tenant,
    receiver_url,
    wait_routed,
    wait_until,
)

pytestmark = pytest.mark.e2e

SERVICES = ("api", "matcher", "dispatcher", "janitor")
APP_CREATED = "com.qlik.v1.app.created"
RATE_INTERVAL = "30s"
"""What Grafana's $__rate_interval stands for here (scrapes every second)."""


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    name = f"hookstream_prom_{secrets.token_hex(4)}"
    async with fresh_database(infra.ensure_postgres(), name) as url:
        yield url


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver.start(
        host="127.0.0.1", port=0, tls=ensure_tls(infra.STATE_DIR / "tls")
    )
    yield running
    await running.stop()


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    env = service_environment(
        infra.ensure_kafka(),
        database_url,
        prefix=f"hsp-{secrets.token_hex(4)}",
        ca_file=ensure_tls(infra.STATE_DIR / "tls").ca,
        static_hosts=STATIC_HOSTS,
        overrides={
            "HOOKSTREAM_RETRY_SCHEDULE": "1s,2s",
            "HOOKSTREAM_RETRY_JITTER": "0.1",
            "HOOKSTREAM_JANITOR_INTERVAL_SECONDS": "5",
        },
    )
    services = ServiceSet(
        env=env,
        ports={name: free_port() for name in SERVICES},
        log_dir=infra.STATE_DIR / "test-logs" / env["HOOKSTREAM_TOPIC_PREFIX"],
    )
    try:
        for name in SERVICES:
            services.start(name)
        yield services
    finally:
        services.stop_all()


@pytest.fixture(scope="module")
def prometheus(stack: ServiceSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus scraping every service each second, with the alert rules loaded."""
    directory = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": f"hookstream-{name}",
                "static_configs": [{"targets": [f"127.0.0.1:{stack.ops_port(name)}"]}],
            }
            for name in SERVICES
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(directory / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"Prometheus did not start: {(directory / 'prometheus.log').read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


async def _drive(stack: ServiceSet, receiver: Receiver) -> None:
    """Deliveries that succeed, a receiver that fails (retries), one that is gone (410: the
    webhook is disabled) and a poison event (a dead letter)."""
    tenant = new_tenant()
    token = mint_token(stack.env["HOOKSTREAM_JWT_KEY"], tenant, "admin", [TENANT_ADMIN])
    receiver.respond("/prom/fail", status=500)
    receiver.respond("/prom/gone", status=410)
    ids = set()
    async with httpx.AsyncClient(base_url=stack.url("api"), headers=bearer(token)) as api:
        for path in ("/prom/ok", "/prom/fail", "/prom/gone"):
            response = await api.post(
                "/api/v1/webhooks",
                json={
                    "name": path,
                    "url": receiver_url(receiver, path),
                    "eventTypes": [APP_CREATED],
                },
            )
            assert response.status_code == 201, response.text
            ids.add(response.json()["id"])
    await wait_routed(stack, tenant, ids)
    topics = stack.env["HOOKSTREAM_TOPIC_PREFIX"]
    async with EventPublisher(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topics) as publisher:
        for _ in range(20):
            await publisher.publish(sample_event(APP_CREATED, tenant, "admin"))
    poison = AIOKafkaProducer(**client_options(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    await poison.start()
    try:
        await poison.send_and_wait(f"{topics}.events", b"not json", key=tenant.encode())
    finally:
        await poison.stop()
    await receiver.wait_for(20, timeout=60, path="/prom/ok")
    await receiver.wait_for(1, timeout=60, path="/prom/gone")


async def test_prometheus_scrapes_the_stack_and_every_query_evaluates(
    stack: ServiceSet, receiver: Receiver, prometheus: str
) -> None:
    await _drive(stack, receiver)
    generator = _generator()
    panels = [panel for row in generator.ROWS.values() for panel in row]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    alerts = [rule for group in rules for rule in group["rules"]]
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:

        async def key_panels_have_data() -> bool:
            for panel in panels:
                if panel.key:
                    for query in panel.queries:
                        expr = query.expr.replace("$__rate_interval", RATE_INTERVAL)
                        if not await _query(client, expr):
                            return False
            return True

        await wait_until(key_panels_have_data, timeout=60, interval=1)

        targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
        assert sorted(t["labels"]["job"] for t in targets) == sorted(
            f"hookstream-{s}" for s in SERVICES
        )
        assert all(t["health"] == "up" for t in targets), targets

        for panel in panels:
            for query in panel.queries:
                await _query(client, query.expr.replace("$__rate_interval", RATE_INTERVAL))
                # as the dashboard sends it, with the Namespace variable at All
                scoped = generator.scoped(query.expr).replace("$namespace", ".*")
                await _query(client, scoped.replace("$__rate_interval", RATE_INTERVAL))
        for alert in alerts:
            await _query(client, alert["expr"])

        async def rules_evaluated() -> list[dict[str, Any]]:
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            evaluated = [rule for group in groups for rule in group["rules"]]
            done = all(rule.get("lastEvaluation", "").startswith("20") for rule in evaluated)
            return evaluated if evaluated and done else []

        evaluated = await wait_until(rules_evaluated, timeout=10, interval=0.5)
        assert {rule["name"] for rule in evaluated} == {alert["alert"] for alert in alerts}
        assert all(rule["health"] == "ok" for rule in evaluated), evaluated

        # The failure and the poison event show where an operator would look.
        outcomes = await _query(client, "sum by (outcome) (hookstream_dispatcher_attempts_total)")
        assert {"success", "retry", "gone"} <= {r["metric"]["outcome"] for r in outcomes}
        assert await _query(client, 'hookstream_dead_letters_total{stage="events"} > 0')
        assert await _query(client, "hookstream_dispatcher_webhooks_disabled_total > 0")
        assert not await _query(client, '{__name__=~".+_created"}')
