"""Operations endpoints stay off the public port, and no request can grow the metrics.

Issue 18 item 3: 300 requests with made-up methods grew the API's `/metrics` by 4,500 lines,
without authentication, because every method became a label value and `/metrics` was on the
public port.
"""

import httpx

from hookstream_dev.stack import ServiceSet
from support import scrape

REQUESTS = "hookstream_api_requests_total"


async def test_the_public_port_serves_no_operations_endpoint(api: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/metrics/", "/healthz", "/readyz"):
        response = await api.get(path)
        assert response.status_code == 404, (path, response.text[:200])
        assert "hookstream_" not in response.text


async def test_the_ops_port_answers_metrics_health_and_readiness(stack: ServiceSet) -> None:
    async with httpx.AsyncClient(base_url=stack.ops_url("api"), timeout=5) as ops:
        assert (await ops.get("/healthz")).status_code == 200
        assert (await ops.get("/readyz")).json()["status"] == "ready"
        assert REQUESTS in (await ops.get("/metrics")).text


async def test_made_up_methods_share_one_label(api: httpx.AsyncClient, stack: ServiceSet) -> None:
    for n in range(60):
        await api.request(f"X-PROBE-{n}", "/api/v1/webhooks")
    methods = {
        dict(labels).get("method")
        for (name, labels) in await scrape(stack.ops_url("api"))
        if name == REQUESTS
    }
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
