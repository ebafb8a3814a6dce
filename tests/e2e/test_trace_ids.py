"""An error's `traceId` finds its log line (issue 24: it was a fresh uuid, logged nowhere)."""

import json

import httpx

from hookstream_dev.stack import ServiceSet
from support import wait_until


def _log_lines_with(stack: ServiceSet, trace_id: str) -> list[dict[str, object]]:
    text = (stack.log_dir / "api.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if trace_id in line]


async def test_an_error_names_the_trace_id_its_log_line_carries(
    api: httpx.AsyncClient, stack: ServiceSet
) -> None:
    response = await api.get("/api/v1/webhooks")  # no token: 401
    trace_id = response.json()["traceId"]
    assert len(trace_id) == 32 and int(trace_id, 16) > 0
    [line] = await wait_until(lambda: _log_lines_with(stack, trace_id), timeout=10)
    assert line["status"] == 401 and line["codes"] == ["HOOKSTREAM-401"]


async def test_a_callers_traceparent_is_taken_up(api: httpx.AsyncClient) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    response = await api.get("/api/v1/webhooks", headers=headers)
    assert response.json()["traceId"] == trace_id
    malformed = await api.get("/api/v1/webhooks", headers={"traceparent": "00-xyz"})
    assert malformed.json()["traceId"] != trace_id


async def test_an_error_answered_before_the_app_runs_carries_the_trace_id_too(
    api: httpx.AsyncClient,
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    response = await api.get("/api/v1/webhooks?x=%00", headers=headers)
    assert response.status_code == 400
    assert response.json()["traceId"] == trace_id
