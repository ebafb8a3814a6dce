"""Bad API requests: bodies, headers, URLs, JSON Patch, cursors and filters.

Not parked by design: every answer is a 4xx in the error envelope (never a 500), the API keeps
serving (a good request right after answers 200), and the pipeline keeps delivering. The API
has no request metric; the 4xx itself is the evidence.
"""

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from poison_harness import CREATED, Poison

from support import RECEIVER_HOST

V1 = "/api/v1/webhooks"
HOOK = "{hook}"
"""Stands for the harness webhook's id in a path."""
GOOD_URL = f"https://{RECEIVER_HOST}:9/ok"


@dataclass
class Bad:
    name: str
    method: str
    path: str
    body: Any = None
    """bytes as they are; anything else is sent as JSON."""
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    content_type: str = "application/json"
    chunks: int = 0
    """Send the body as this many chunked 64 KiB pieces on a raw connection."""


def _create(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "poison api", "url": GOOD_URL, "eventTypes": [CREATED]}
    for key, value in fields.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def _cursor(doc: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


PATCH = f"{V1}/{HOOK}"
PATCH_TYPE = "application/json"

CORPUS: list[Bad] = [
    # Bodies
    Bad("malformed JSON", "POST", V1, b'{"name": "x", '),
    Bad("empty body", "POST", V1, b""),
    Bad("body a JSON array", "POST", V1, []),
    Bad("body a JSON string", "POST", V1, "webhook"),
    Bad("body JSON null", "POST", V1, b"null"),
    Bad("invalid UTF-8", "POST", V1, b'{"name": "\xff\xfe"}'),
    Bad("nested 5000 deep", "POST", V1, b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    Bad("nested 100 deep in a field", "POST", V1, _create(description=[[[[[[[[[[[[1]]]]]]]]]]]])),
    Bad("not JSON content type", "POST", V1, b"name=x", content_type="text/plain"),
    Bad(
        "form content type", "POST", V1, b"name=x", content_type="application/x-www-form-urlencoded"
    ),
    Bad("name a number", "POST", V1, _create(name=5)),
    Bad("name missing", "POST", V1, _create(name=None)),
    Bad("url missing", "POST", V1, _create(url=None)),
    Bad("url a list", "POST", V1, _create(url=["https://a"])),
    Bad("url not a URL", "POST", V1, _create(url="not a url")),
    Bad("url ftp", "POST", V1, _create(url="ftp://example.com/x")),
    Bad("url with credentials", "POST", V1, _create(url="https://user:pw@example.com/x")),
    Bad("url 64-char DNS label", "POST", V1, _create(url=f"https://{'a' * 64}.example.com/")),
    Bad("url with a NUL", "POST", V1, _create(url="https://example.com/a\x00b")),
    Bad("eventTypes a string", "POST", V1, _create(eventTypes=CREATED)),
    Bad("eventTypes unknown", "POST", V1, _create(eventTypes=["com.example.nope"])),
    Bad("eventTypes of numbers", "POST", V1, _create(eventTypes=[1, 2])),
    Bad("eventTypes 10000 long", "POST", V1, _create(eventTypes=[CREATED] * 10000)),
    Bad("enabled a string", "POST", V1, _create(enabled="yes please")),
    Bad("level unknown", "POST", V1, _create(level="galaxy")),
    Bad("headers a list", "POST", V1, _create(headers=["x"])),
    Bad("header value a number", "POST", V1, _create(headers={"X-A": 1})),
    Bad("header name with a newline", "POST", V1, _create(headers={"X-A\nB": "v"})),
    Bad("header value with CRLF", "POST", V1, _create(headers={"X-A": "v\r\nX-Evil: 1"})),
    Bad("secret too short", "POST", V1, _create(secret="x")),
    Bad("secret a number", "POST", V1, _create(secret=12345)),
    Bad("name 100000 chars", "POST", V1, _create(name="n" * 100_000)),
    Bad("description 500000 chars", "POST", V1, _create(description="d" * 500_000)),
    Bad("name with a NUL", "POST", V1, _create(name="a\x00b")),
    Bad("description with a NUL", "POST", V1, _create(description="a\x00b")),
    Bad("filter that does not parse", "POST", V1, _create(filter="((( nope")),
    Bad("filter on an unknown attribute", "POST", V1, _create(filter='data.nope eq "x"')),
    Bad("filter 100000 chars", "POST", V1, _create(filter='id eq "' + "x" * 100_000 + '"')),
    Bad("filter a number", "POST", V1, _create(filter=5)),
    Bad("read-only id", "POST", V1, _create(id="00000000-0000-4000-8000-000000000000")),
    Bad("read-only createdAt", "POST", V1, _create(createdAt="2024-01-01T00:00:00Z")),
    Bad("checkCertificateRevocation a string", "POST", V1, _create(checkCertificateRevocation="x")),
    Bad("ownerId 100000 chars", "POST", V1, _create(level="user", ownerId="o" * 100_000)),
    Bad("PUT with wrong types", "PUT", f"{V1}/{HOOK}", _create(name=[1], url=2)),
    Bad("PUT malformed JSON", "PUT", f"{V1}/{HOOK}", b"{"),
    # JSON Patch
    Bad("patch not a list", "PATCH", PATCH, {"op": "replace", "path": "/name", "value": "x"}),
    Bad("patch empty object op", "PATCH", PATCH, [{}]),
    Bad("patch unknown op", "PATCH", PATCH, [{"op": "explode", "path": "/name"}]),
    Bad("patch op a number", "PATCH", PATCH, [{"op": 5, "path": "/name", "value": "x"}]),
    Bad("patch without path", "PATCH", PATCH, [{"op": "replace", "value": "x"}]),
    Bad(
        "patch path not a pointer",
        "PATCH",
        PATCH,
        [{"op": "replace", "path": "name", "value": "x"}],
    ),
    Bad("patch bad escape", "PATCH", PATCH, [{"op": "replace", "path": "/na~2me", "value": "x"}]),
    Bad("patch unknown field", "PATCH", PATCH, [{"op": "replace", "path": "/nope", "value": "x"}]),
    Bad("patch read-only field", "PATCH", PATCH, [{"op": "replace", "path": "/id", "value": "x"}]),
    Bad("patch wrong type", "PATCH", PATCH, [{"op": "replace", "path": "/enabled", "value": "x"}]),
    Bad("patch bad url", "PATCH", PATCH, [{"op": "replace", "path": "/url", "value": "nope"}]),
    Bad("patch bad filter", "PATCH", PATCH, [{"op": "replace", "path": "/filter", "value": "(("}]),
    Bad("patch remove url", "PATCH", PATCH, [{"op": "remove", "path": "/url"}]),
    Bad("patch failing test op", "PATCH", PATCH, [{"op": "test", "path": "/name", "value": "?"}]),
    Bad("patch move from nowhere", "PATCH", PATCH, [{"op": "move", "from": "/x", "path": "/y"}]),
    Bad("patch deep path", "PATCH", PATCH, [{"op": "add", "path": "/a" * 2000, "value": 1}]),
    Bad("patch 20000 operations", "PATCH", PATCH, [{"op": "test", "path": "/x"}] * 20000),
    Bad(
        "patch name with a NUL",
        "PATCH",
        PATCH,
        [{"op": "replace", "path": "/name", "value": "\x00"}],
    ),
    Bad("patch malformed JSON", "PATCH", PATCH, b"[{"),
    # Cursors, filters and other query parameters
    Bad("cursor garbage", "GET", f"{V1}?next=garbage!!"),
    Bad("cursor base64 of garbage", "GET", f"{V1}?next={_cursor('garbage')}"),
    Bad("cursor base64 of a list", "GET", f"{V1}?next={_cursor([1, 2, 3])}"),
    Bad("cursor with wrong fields", "GET", f"{V1}?next={_cursor({'k': 'x', 'id': 5})}"),
    Bad("cursor 6000 chars", "GET", f"{V1}?next={'A' * 6000}"),
    Bad("next and prev together", "GET", f"{V1}?next=a&prev=b"),
    Bad("limit not a number", "GET", f"{V1}?limit=abc"),
    Bad("limit 0", "GET", f"{V1}?limit=0"),
    Bad("limit 100000", "GET", f"{V1}?limit=100000"),
    Bad("limit beyond int64", "GET", f"{V1}?limit=99999999999999999999999"),
    Bad("sort unknown", "GET", f"{V1}?sort=-nope"),
    Bad("enabled not a boolean", "GET", f"{V1}?enabled=maybe"),
    Bad("name filter with a NUL", "GET", f"{V1}?name=%00"),
    Bad("url filter with a NUL", "GET", f"{V1}?url=a%00b"),
    Bad("eventTypes filter with a NUL", "GET", f"{V1}?eventTypes=%00"),
    Bad("deliveries: cursor garbage", "GET", f"{V1}/{HOOK}/deliveries?next=garbage"),
    Bad("deliveries: since not a time", "GET", f"{V1}/{HOOK}/deliveries?since=yesterday"),
    Bad("deliveries: since no offset", "GET", f"{V1}/{HOOK}/deliveries?since=2024-01-01T00:00:00"),
    Bad("deliveries: until year 0", "GET", f"{V1}/{HOOK}/deliveries?until=0000-01-01T00:00:00Z"),
    Bad("deliveries: status unknown", "GET", f"{V1}/{HOOK}/deliveries?status=maybe"),
    Bad("deliveries: sort unknown", "GET", f"{V1}/{HOOK}/deliveries?sort=+nope"),
    Bad(
        "deliveries: eventType with a NUL",
        "GET",
        f"{V1}/{HOOK}/deliveries?eventType=%00",
    ),
    # Ids in paths
    Bad("webhook id not a UUID", "GET", f"{V1}/not-a-uuid"),
    Bad("webhook id with a NUL", "GET", f"{V1}/%00"),
    Bad("webhook id 5000 chars", "GET", f"{V1}/{'f' * 5000}"),
    Bad("delivery id not a UUID", "GET", f"{V1}/{HOOK}/deliveries/nope"),
    Bad("resend unknown delivery", "POST", f"{V1}/{HOOK}/deliveries/nope/actions/resend"),
    Bad("recover with a bad body", "POST", f"{V1}/{HOOK}/actions/recover", {"since": "x"}),
    Bad("recovery id not a UUID", "GET", f"{V1}/{HOOK}/actions/recover/nope"),
    Bad("method not allowed", "DELETE", V1),
    Bad("unknown path", "GET", "/api/v1/nothing-here"),
    # Headers and sizes
    Bad("no token", "GET", V1, auth=False),
    Bad("garbage token", "GET", V1, auth=False, headers={"Authorization": "Bearer garbage"}),
    Bad("basic auth", "GET", V1, auth=False, headers={"Authorization": "Basic dXNlcjpwdw=="}),
    Bad(
        "token of 8000 chars",
        "GET",
        V1,
        auth=False,
        headers={"Authorization": "Bearer " + "a" * 8000},
    ),
    Bad(
        "token with a forged alg none",
        "GET",
        V1,
        auth=False,
        headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    ),
    Bad("declared 60 MB body", "POST", V1, b"{}", headers={"Content-Length": "62914560"}),
    Bad("chunked body over 1 MiB", "POST", V1, b"", chunks=17),
    Bad("URL of 20000 bytes", "GET", f"{V1}?name={'u' * 20000}"),
    Bad("header of 20000 bytes", "GET", V1, headers={"X-Padding": "p" * 20000}),
    Bad(
        "200 headers of 200 bytes",
        "GET",
        V1,
        headers={f"X-H{i}": "h" * 200 for i in range(200)},
    ),
]


def _prepare(bad: Bad, poison: Poison) -> tuple[str, bytes | None, dict[str, str]]:
    path = bad.path.replace(HOOK, poison.webhook_id)
    headers = {**(poison.auth if bad.auth else {}), **bad.headers}
    if bad.body is None:
        return path, None, headers
    content = bad.body if isinstance(bad.body, bytes) else orjson.dumps(bad.body)
    headers.setdefault("Content-Type", bad.content_type)
    return path, content, headers


async def _send(poison: Poison, bad: Bad) -> tuple[int, bytes]:
    path, content, headers = _prepare(bad, poison)
    declared = headers.pop("Content-Length", None)
    if bad.chunks:
        headers["Transfer-Encoding"] = "chunked"
        content = (b"10000\r\n" + b"x" * 65536 + b"\r\n") * bad.chunks
    elif declared is not None:
        headers["Content-Length"] = declared
        content = b""
    else:
        async with httpx.AsyncClient(base_url=poison.stack.url("api"), timeout=20) as client:
            response = await client.request(bad.method, path, content=content, headers=headers)
        return response.status_code, response.content
    # A declared length the body does not have, or an endless chunked body: a raw connection.
    head = f"{bad.method} {path} HTTP/1.1\r\nHost: x\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", poison.stack.ports["api"])
    try:
        writer.write(head.encode() + (content or b""))
        await writer.drain()
        raw = await asyncio.wait_for(_read_response(reader), 20)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """Head and body of one answer (with Content-Length), without waiting for the close."""
    raw = b""
    while True:
        head, found, body = raw.partition(b"\r\n\r\n")
        if found:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                return raw
        chunk = await reader.read(65536)
        if not chunk:
            return raw
        raw += chunk


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
async def test_a_bad_request_gets_a_4xx_envelope_and_the_api_goes_on(
    poison: Poison, bad: Bad
) -> None:
    async with poison.case("api", bad.name) as case:
        status, body = await _send(poison, bad)
        assert 400 <= status < 500, (status, body[:300])
        envelope = orjson.loads(body)
        assert envelope["errors"] and envelope["traceId"], envelope
        assert all(e.get("code") and e.get("title") for e in envelope["errors"]), envelope
        case.other_evidence = True

        async with httpx.AsyncClient(base_url=poison.stack.url("api"), timeout=10) as client:
            response = await client.get(f"{V1}/{poison.webhook_id}", headers=poison.auth)
        assert response.status_code == 200, response.text
        await poison.next_good_event_delivered(case)
        poison.services_alive()
