"""The `hookstream` CLI managing webhooks and deliveries on the real services."""

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hookstream_client import AsyncClient
from hookstream_client.cli import main
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import new_tenant, receiver_url, wait_routed, wait_until

CREATED = "com.qlik.v1.app.created"


class Cli:
    """Runs `hookstream` in a thread: the receiver shares this test's event loop."""

    def __init__(self, api: str, token: str) -> None:
        self.options = ["--api", api, "--token", token]

    async def __call__(self, *argv: str, json_output: bool = True) -> tuple[int, Any, str]:
        """Exit code, stdout (parsed when JSON) and stderr of one command."""
        out, err = io.StringIO(), io.StringIO()
        options = [*self.options, *(["--output", "json"] if json_output else [])]

        def run() -> int:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return main([*argv, *options])

        code = await asyncio.to_thread(run)
        text = out.getvalue()
        return code, json.loads(text) if json_output and code == 0 else text, err.getvalue()


async def test_webhooks_deliveries_and_recover_through_the_cli(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Any,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    cli = Cli(stack.url("api"), token(tenant, "u1"))
    path = f"/hooks/cli-{uuid.uuid4().hex}"
    receiver.respond(path, status=500)
    code, created, _ = await cli(
        "webhooks", "create", "--name", "from the cli", "--url", receiver_url(receiver, path),
        "--event-type", CREATED, "--header", "X-Team=data",
    )  # fmt: skip
    assert code == 0 and created["headers"] == {"X-Team": "data"} and created["enabled"]
    hook = created["id"]

    code, table, _ = await cli("webhooks", "list", json_output=False)
    header, row = table.splitlines()
    assert header.split() == ["ID", "NAME", "ENABLED", "EVENT", "TYPES", "URL"]
    assert row.startswith(hook) and "from the cli" in row and CREATED in row
    client = client_for(tenant, "u1")
    other = await client.create_webhook(
        {"name": "other", "url": created["url"], "eventTypes": ["com.qlik.v1.app.deleted"]}
    )
    code, listed, _ = await cli("webhooks", "list", "--all", "--limit", "1")
    assert [w["id"] for w in listed] == [other.id, hook]

    code, updated, _ = await cli("webhooks", "update", hook, "--name", "renamed")
    assert code == 0 and updated["name"] == "renamed" and updated["url"] == created["url"]
    code, disabled, _ = await cli("webhooks", "disable", hook)
    assert code == 0 and disabled["enabled"] is False
    code, enabled, _ = await cli("webhooks", "enable", hook)
    assert code == 0 and enabled["enabled"] is True

    await wait_routed(stack, tenant, {hook})
    await publisher.publish(sample_event(CREATED, tenant, "u1"))

    async def stored() -> bool:
        return bool((await client.list_deliveries(hook)).data)

    await wait_until(stored, timeout=30)
    code, deliveries, _ = await cli("deliveries", "list", hook)
    [delivery] = deliveries
    assert code == 0 and delivery["eventType"] == CREATED and delivery["status"] == "fail"
    code, shown, _ = await cli("deliveries", "get", hook, delivery["id"])
    assert code == 0 and shown["request"]["headers"]["X-Team"] == "data"

    receiver.respond(path, status=200)
    code, resent, _ = await cli("deliveries", "resend", hook, delivery["id"])
    assert code == 0 and resent["status"] == "success" and resent["id"] != delivery["id"]

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, recovery, _ = await cli("recover", hook, "--since", since, "--wait")
    assert code == 0 and recovery["state"] == "done"

    code, _, _ = await cli("webhooks", "delete", hook)
    assert code == 0
    code, _, error = await cli("webhooks", "get", hook)
    assert code == 3 and "HOOKSTREAM-404" in error


async def test_exit_codes_say_what_went_wrong(stack: ServiceSet, token: Any) -> None:
    cli = Cli(stack.url("api"), token(new_tenant(), "u1"))
    code, _, error = await cli(
        "webhooks", "create", "--name", "n", "--url", "http://plain.example.com/",
        "--event-type", CREATED,
    )  # fmt: skip
    assert code == 1 and "HOOKSTREAM-400" in error and "url" in error
    code, _, error = await Cli(stack.url("api"), "not-a-token")("webhooks", "list")
    assert code == 4 and "401" in error
    code, _, error = await cli("webhooks", "update", str(uuid.uuid4()))
    assert code == 2 and "nothing to change" in error
    code, _, error = await Cli("http://127.0.0.1:9", "t")("webhooks", "list")
    assert code == 5 and "cannot reach" in error


def test_the_installed_command_reads_the_environment(stack: ServiceSet, token: Any) -> None:
    command = [sys.executable, "-m", "hookstream_client.cli", "webhooks", "list", "-o", "json"]
    env = {"HOOKSTREAM_API": stack.url("api"), "HOOKSTREAM_TOKEN": token(new_tenant(), "u1")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, json.loads(done.stdout)) == (0, []), done.stderr
    done = subprocess.run(command, env={}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "HOOKSTREAM_TOKEN" in done.stderr
