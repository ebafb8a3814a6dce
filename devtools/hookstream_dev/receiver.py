"""An HTTPS webhook receiver for demos and tests: it records every request and answers as told.

python -m hookstream_dev.receiver --port 8443        # demo; GET /requests shows what came
receiver = await Receiver.start(tls=ensure_tls())      # in a test
receiver.respond("/slow", status=200, delay=9)
[request] = await receiver.wait_for(1, timeout=10, path="/slow")
"""

import argparse
import asyncio
import fcntl
import json
import logging
import ssl
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from hookstream_dev.infra import STATE_DIR

TLS_NAMES = ("receiver.hookstream.test", "localhost", "127.0.0.1")
LOGGED_HEADERS = ("content-type", "user-agent", "webhook-id", "qlik-signature")
OK_BODY = '{"ok":true}'

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the development CA that clients trust, the server's chain and key."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self, client_ca: Path | None = None) -> ssl.SSLContext:
        """The server's; with `client_ca`, it also requires a client certificate that CA
        issued (mutual TLS)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if client_ca is not None:
            context.load_verify_locations(cafile=client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts the development CA only; for httpx's `verify=` or aiohttp's `ssl=`."""
        return ssl.create_default_context(cafile=self.ca)


def ensure_tls(directory: Path = STATE_DIR / "tls") -> TlsFiles:
    """Create the CA and server certificate once and reuse them, so ca.pem stays trusted."""
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:  # parallel test workers must agree on one CA
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(path.is_file() for path in (files.ca, files.cert, files.key)):
            ca = trustme.CA(organization_name="Hookstream development")
            issued = ca.issue_cert(*TLS_NAMES)
            ca.cert_pem.write_to_path(files.ca)
            issued.private_key_pem.write_to_path(files.key)
            files.cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    return files


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived; header names are lowercase, repeated headers joined by ", "."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body.decode(errors="replace"),
            "receivedAt": self.received_at,
        }


@dataclass(frozen=True)
class Reply:
    """How the receiver answers on one path."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = OK_BODY
    delay: float = 0.0


class Receiver:
    """A running receiver; make one with `await Receiver.start(...)`, end it with `stop()`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self.url = ""
        self._replies: dict[str, Reply] = {}
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
        client_ca: Path | None = None,
    ) -> "Receiver":
        """Listen on host:port (0 picks a free port), over HTTPS when `tls` is given; with
        `client_ca` too, only clients presenting a certificate that CA issued get an answer."""
        receiver = cls()
        app = web.Application()
        app.router.add_get("/", receiver._about)
        app.router.add_get("/requests", receiver._list)
        app.router.add_route("*", "/{tail:.*}", receiver._record)
        # Cancel a delayed answer when the client gives up, and don't let it hold up stop().
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        context = tls.server_context(client_ca) if tls else None
        site = web.TCPSite(runner, host, port, ssl_context=context)
        await site.start()
        receiver._runner = runner
        receiver.port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        receiver.url = f"{'https' if tls else 'http'}://{url_host}:{receiver.port}"
        return receiver

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def respond(
        self,
        path: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = OK_BODY,
        delay: float = 0.0,
    ) -> None:
        """Answer requests to `path` like this from now on (replacing what was set before)."""
        self._replies[path] = Reply(status, headers or {}, body, delay)

    def received(self, path: str | None = None) -> list[RecordedRequest]:
        """The requests so far, to `path` only if given."""
        return [r for r in self.requests if path is None or r.path == path]

    async def wait_for(
        self, count: int = 1, timeout: float = 10.0, path: str | None = None
    ) -> list[RecordedRequest]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return them."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: len(self.received(path)) >= count), timeout
                )
            except TimeoutError:
                got = len(self.received(path))
                where = f" to {path}" if path else ""
                raise TimeoutError(f"{got} of {count} requests{where} within {timeout} s") from None
        return self.received(path)

    async def _record(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        recorded = RecordedRequest(
            request.method, request.path, headers, await request.read(), time.time()
        )
        self.requests.append(recorded)
        async with self._arrived:
            self._arrived.notify_all()
        shown = " ".join(f"{name}={headers[name]}" for name in LOGGED_HEADERS if name in headers)
        log.info("%s %s  %d bytes  %s", request.method, request.path, len(recorded.body), shown)
        reply = self._replies.get(request.path, Reply())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        return web.Response(
            status=reply.status,
            body=body,
            headers={"Content-Type": "application/json", **reply.headers},
        )

    async def _about(self, request: web.Request) -> web.Response:
        return web.Response(
            text="Hookstream test webhook receiver: POST anything, GET /requests lists it.\n"
        )

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [r.as_json() for r in self.requests], dumps=partial(json.dumps, indent=2)
        )


async def _serve(host: str, port: int, tls: TlsFiles) -> None:
    receiver = await Receiver.start(host, port, tls)
    log.info("listening on %s (also as https://%s:%d)", receiver.url, TLS_NAMES[0], receiver.port)
    log.info("trust %s; GET %s/requests lists what arrived; Ctrl-C stops", tls.ca, receiver.url)
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hookstream_dev.receiver",
        description="Run the HTTPS test webhook receiver in the foreground.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--tls-dir", type=Path, default=STATE_DIR / "tls")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="receiver: %(message)s", stream=sys.stderr, force=True
    )
    with suppress(KeyboardInterrupt):  # Ctrl-C is how the demo ends
        asyncio.run(_serve(args.host, args.port, ensure_tls(args.tls_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
