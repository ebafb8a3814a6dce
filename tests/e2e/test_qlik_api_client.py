"""Qlik's own JavaScript client, @qlik/api, against our API: every webhooks call it offers.

The Node project is in tests/compat/qlik-api; `webhooks.mjs` there does the calls and checks what
comes back. This test installs it, runs its `create` phase, publishes an event so that a delivery
exists, then runs its `manage` phase (list, page, get, patch, replace, event types, deliveries,
resend, delete, get after delete).
"""

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import new_tenant, receiver_url, repo_root, wait_routed, wait_until

PROJECT = repo_root() / "tests" / "compat" / "qlik-api"
APP_CREATED = "com.qlik.v1.app.created"
STEPS = {
    "create": ["create", "create-second"],
    "manage": [
        "list-filtered",
        "list-paged",
        "get",
        "patch",
        "update",
        "event-types",
        "deliveries",
        "resend",
        "delete",
        "get-after-delete",
    ],
}


@pytest.fixture(scope="session")
def qlik_api_project() -> Path:
    """The Node project with its dependencies installed by `npm ci` (skipped when up to date)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("this test needs Node.js 20 or later and npm on PATH")
    lock = PROJECT / "package-lock.json"
    stamp = PROJECT / "node_modules" / ".hookstream-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != digest:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=PROJECT,
            check=True,
            timeout=300,
        )
        stamp.write_text(digest)  # npm ci replaced node_modules, so this is written afresh
    return PROJECT


async def run_phase(project: Path, phase: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one phase of the script; fail with its output unless it exits 0 with every step ok.

    Asynchronous on purpose: the receiver the resend goes to runs on this event loop.
    """
    process = await asyncio.create_subprocess_exec(
        "node",
        "webhooks.mjs",
        phase,
        cwd=project,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    output = stdout.decode()
    context = f"node webhooks.mjs {phase}\n--- stdout\n{output}--- stderr\n{stderr.decode()}"
    assert process.returncode == 0, context
    steps = {}
    for line in output.splitlines():
        step = json.loads(line)
        assert step["ok"] is True, context
        steps[step["step"]] = step
    assert list(steps) == STEPS[phase], context
    return steps


async def test_qlik_api_client_drives_every_webhooks_call(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Any,
    client_for: Callable[..., AsyncClient],
    qlik_api_project: Path,
) -> None:
    tenant = new_tenant()
    path = f"/hooks/{uuid.uuid4().hex}"
    env = {
        "HOOKSTREAM_URL": stack.url("api"),
        "HOOKSTREAM_TOKEN": token(tenant, "admin-1", admin=True),
        "RECEIVER_URL": receiver_url(receiver, path),
    }

    created = await run_phase(qlik_api_project, "create", env)
    webhook_id = created["create"]["webhookId"]
    second_id = created["create-second"]["secondWebhookId"]

    # A delivery for the manage phase to list and resend.
    await wait_routed(stack, tenant, {webhook_id, second_id})
    await publisher.publish(sample_event(APP_CREATED, tenant, "admin-1"))
    await receiver.wait_for(1, timeout=30, path=path)

    client = client_for(tenant, "admin-1", admin=True)

    async def recorded() -> bool:
        return bool((await client.list_deliveries(webhook_id)).data)

    try:
        await wait_until(recorded, timeout=15)
    except AssertionError:
        raise AssertionError(f"the delivery was not recorded; see {stack.log_dir}") from None

    managed = await run_phase(
        qlik_api_project,
        "manage",
        {**env, "WEBHOOK_ID": webhook_id, "SECOND_WEBHOOK_ID": second_id},
    )
    assert managed["get-after-delete"]["status"] == 404
    # The resend reached the URL the PUT set, with the encrypted header's real value.
    [resent] = receiver.received(f"{path}/updated")
    assert resent.headers["x-compat-key"] == "encrypted-value-never-shown"
    assert resent.headers["webhook-id"] == managed["resend"]["deliveryId"]
