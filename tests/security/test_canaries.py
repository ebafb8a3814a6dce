"""No response, log line, metric or history row carries a webhook's secret, encrypted header or
client key.

Issue 18 item 1: a failing JSON Patch answered 400 with jsonpointer's message, which printed the
whole document being patched: the decrypted secret and encrypted header values included.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from canaries import ENCRYPTED_HEADER, Canaries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, scrape, wait_routed, wait_until

V1 = "/api/v1/webhooks"
CREATED = "com.qlik.v1.app.created"
CANARIES = Canaries()
FIELDS = [
    "name",
    "description",
    "url",
    "eventTypes",
    "level",
    "ownerId",
    "filter",
    "enabled",
    "headers",
    "encryptedHeaders",
    "secret",
    "enableCloudEventDelivery",
    "checkCertificateRevocation",
    "clientCertificate",
]
FAILING_PATCHES = [
    [{"op": "remove", "path": "/x/y"}],
    [{"op": "replace", "path": "/x/y", "value": 1}],
    [{"op": "add", "path": "/secret/x", "value": 1}],
    [{"op": "remove", "path": f"/encryptedHeaders/{ENCRYPTED_HEADER}/0"}],
    [{"op": "replace", "path": "/encryptedHeaders/nope", "value": "v"}],
    [{"op": "add", "path": "/eventTypes/99", "value": CREATED}],
    [{"op": "remove", "path": "secret"}],
    [{"op": "replace", "path": "/clientCertificate/key/x", "value": "v"}],
    [{"op": "remove", "path": "/clientCertificate/chain"}],
    [{"op": "replace", "path": "/headers/a/b", "value": "v"}],
    [{"op": "replace", "path": "/name", "value": "ok"}, {"op": "remove", "path": "/x"}],
]


def leaked(response: httpx.Response) -> list[str]:
    """The canaries in a response's body or headers."""
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return CANARIES.found_in(response.text + headers)


@dataclass(frozen=True)
class Caller:
    """The TenantAdmin of a tenant of its own."""

    tenant: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def caller(token: Callable[..., str]) -> Caller:
    tenant = new_tenant()
    return Caller(tenant, bearer(token(tenant, "u1", admin=True)))


@pytest.fixture(scope="module")
def canary_webhook(stack: ServiceSet, caller: Caller, receiver: Receiver) -> str:
    body = {
        "name": "canary",
        "url": receiver_url(receiver, "/hooks/canary"),
        "eventTypes": [CREATED],
        **CANARIES.webhook_fields(),
    }
    response = httpx.post(f"{stack.url('api')}{V1}", json=body, headers=caller.headers, timeout=15)
    assert response.status_code == 201, response.text
    assert not leaked(response)
    return response.json()["id"]


@pytest.mark.parametrize("operations", FAILING_PATCHES)
def test_a_failing_patch_names_the_path_not_the_document(
    stack: ServiceSet, caller: Caller, canary_webhook: str, operations: list[Any]
) -> None:
    response = httpx.patch(
        f"{stack.url('api')}{V1}/{canary_webhook}",
        json=operations,
        headers=caller.headers,
        timeout=15,
    )
    assert response.status_code == 400, response.text
    assert not leaked(response), response.text
    assert "patch[" in response.text or "/" in response.json()["errors"][0]["detail"]


pointers = st.one_of(
    st.sampled_from([f"/{f}" for f in FIELDS]),
    st.builds(
        lambda field, rest: f"/{field}/{rest}",
        st.sampled_from(FIELDS),
        st.sampled_from(["x", "0", "99", "-", ENCRYPTED_HEADER, "a/b", "~1", "~0x"]),
    ),
    st.text(alphabet="/~01abx-", max_size=12),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
operations = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace"]),
            "path": pointers,
            "value": json_values,
        }
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(patch=operations)
def test_fuzzed_patches_never_echo_a_secret(
    stack: ServiceSet, caller: Caller, canary_webhook: str, patch: list[Any]
) -> None:
    """Every answer is a documented status, and none carries a canary. A patch that succeeds
    changes the canary webhook; its secret is put back for the next example."""
    url = f"{stack.url('api')}{V1}/{canary_webhook}"
    response = httpx.patch(url, json=patch, headers=caller.headers, timeout=15)
    assert response.status_code in (204, 400, 403, 409, 429), response.text
    assert not leaked(response), response.text
    if response.status_code == 204:
        restore = [
            {"op": "replace", "path": f"/{k}", "value": v}
            for k, v in CANARIES.webhook_fields().items()
        ]
        assert httpx.patch(url, json=restore, headers=caller.headers, timeout=15).status_code == 204


async def test_reads_resends_logs_metrics_and_history_carry_no_canary(
    stack: ServiceSet,
    caller: Caller,
    canary_webhook: str,
    receiver: Receiver,
    publisher: EventPublisher,
    database_url: str,
) -> None:
    """A real delivery, which the receiver gets with the encrypted header's value (that is its
    purpose), then every read of it, a resend and a test event: no answer shows a canary, and
    neither does anything an operator reads: the services' logs and metrics, and the history
    and audit tables (the fuzzed patches above changed the secret many times)."""
    await wait_routed(stack, caller.tenant, {canary_webhook})
    await publisher.publish(sample_event(CREATED, caller.tenant, "u1"))
    delivered = await receiver.wait_for(1, timeout=60, path="/hooks/canary")
    assert delivered[0].headers[ENCRYPTED_HEADER.lower()] == CANARIES.header_value

    async with httpx.AsyncClient(
        base_url=stack.url("api"), headers=caller.headers, timeout=15
    ) as api:
        deliveries = f"{V1}/{canary_webhook}/deliveries"
        listed = await wait_until(lambda: _listed(api, deliveries), timeout=60)
        delivery_id = listed.json()["data"][0]["id"]
        answers = [
            listed,
            await api.get(f"{V1}/{canary_webhook}"),
            await api.get(V1),
            await api.get(f"{deliveries}/{delivery_id}"),
            await api.post(f"{deliveries}/{delivery_id}/actions/resend"),
            await api.post(f"{V1}/{canary_webhook}/actions/test"),
            await api.put(f"{V1}/{canary_webhook}", json={"name": "no url"}),
            await api.put(
                f"{V1}/{canary_webhook}",
                json={"name": "n", "url": "http://x", "eventTypes": [CREATED]},
            ),
            await api.get(f"{V1}/{canary_webhook}/audit", params={"limit": 100}),
            await api.get(f"{V1}/audit", params={"limit": 100}),
        ]
    for answer in answers:
        assert answer.status_code < 500, answer.text
        assert not leaked(answer), (answer.request.url, answer.text)
    for instance in ("api", "matcher", "dispatcher", "janitor"):
        text = "\n".join(
            f"{name} {labels}" for name, labels in await scrape(stack.ops_url(instance))
        )
        assert not CANARIES.found_in(text), instance
    assert not CANARIES.found_in_logs(stack.log_dir)
    assert not await CANARIES.found_in_history(database_url)


async def _listed(api: httpx.AsyncClient, path: str) -> httpx.Response | None:
    response = await api.get(path)
    return response if response.status_code == 200 and response.json()["data"] else None
