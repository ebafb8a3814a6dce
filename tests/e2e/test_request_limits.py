"""Oversized requests are refused before they are read: body (413), URL (414), headers."""

import asyncio

import httpx

from hookstream_dev.stack import ServiceSet

MIB = 1024 * 1024


async def _post_raw(port: int, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of its body, then read what the server answers.

    Only what the server reads is sent, so it can close without resetting the connection.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()


async def test_a_declared_huge_body_is_refused_before_it_is_sent(stack: ServiceSet) -> None:
    head = (
        b"POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 62914560\r\n\r\n"
    )
    answer = await _post_raw(stack.ports["api"], head, b"")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"HOOKSTREAM-413"' in answer


async def test_a_chunked_body_is_cut_off_at_the_limit(stack: ServiceSet) -> None:
    head = (
        b"POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    answer = await _post_raw(stack.ports["api"], head, chunk * 17)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_long_urls_and_headers_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/webhooks?name=" + "a" * 10_000)
    assert response.status_code == 414
    assert response.json()["errors"][0]["code"] == "HOOKSTREAM-414"
    huge_header = {"X-Padding": "b" * 20_000}
    response = await api.get("/api/v1/webhooks", headers=huge_header)
    assert response.status_code == 431
    assert response.json()["errors"][0]["code"] == "HOOKSTREAM-431"


async def test_a_nul_in_the_url_is_a_400(api: httpx.AsyncClient) -> None:
    for query in ("name=%00", "url=a%00b", "eventTypes=%00"):
        response = await api.get(f"/api/v1/webhooks?{query}")
        assert response.status_code == 400, query
        assert response.json()["errors"][0]["code"] == "HOOKSTREAM-400"


async def test_a_body_at_the_limit_is_read_normally(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/webhooks",
        content=b" " * (MIB - 10) + b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
