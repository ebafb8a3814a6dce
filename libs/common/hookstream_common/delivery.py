"""One delivery attempt: build the signed request, send it, and describe what happened.

Shared by the dispatcher and the API's synchronous resend, so both send byte-identical requests.
"""

import functools
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from errno import ECONNRESET
from typing import Any

import aiohttp
from yarl import URL

from hookstream_common.client_certs import ClientCertificate, TlsContexts
from hookstream_common.events import Event
from hookstream_common.http_client import (
    BlockedAddress,
    DeliveryClient,
    EgressProxyError,
    UnresolvableHost,
)
from hookstream_common.request_rules import is_reserved_header
from hookstream_common.resilience import CLIENT_CERTIFICATE_REFUSED
from hookstream_common.signing import qlik_signature, standard_webhooks_signatures
from hookstream_common.webhook_model import DeliveryTarget

OMITTED = "**OMITTED**"
MAX_STORED_BODY = 64 * 1024
MAX_STORED_HEADERS = 64
MAX_STORED_HEADER_BYTES = 8 * 1024
HEADERS_CUT = "Hookstream-Headers-Not-Stored"
"""Set on stored response headers that were cut: how many headers were left out."""


@dataclass(frozen=True)
class OutboundRequest:
    """The exact request to send, and the form of it history may show."""

    url: str
    headers: dict[str, str]
    body: bytes
    recorded_headers: dict[str, str]
    problem: str | None = None
    """Why it must not be sent (the webhook's configuration is unusable); `send` records it."""
    client_certificate: ClientCertificate | None = field(default=None, repr=False)
    """Presented in the TLS handshake (client_certs)."""

    def as_history(self) -> dict[str, Any]:
        """`request` of a Delivery without its body, which is stored once per event."""
        return {"url": self.url, "headers": self.recorded_headers}


@dataclass(frozen=True)
class Attempt:
    """What one POST produced: a response, or an error before there was one."""

    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    body_truncated: bool = False
    error: str | None = None
    error_class: str | None = None
    """`timeout`, `dns`, `tls` (the receiver's certificate not accepted, or another TLS failure),
    `tls-refused-by-receiver` (the receiver refused the handshake with an alert about the client
    certificate), `disconnected` (the receiver closed or reset the connection before answering),
    `connection` (no connection), `blocked` (an address webhooks may not reach),
    `config` (a URL or secret that cannot be used: retrying will not help until it is changed),
    `proxy` (the egress proxy could not be reached or opened no tunnel; retried) or `internal`
    (the dispatcher failed unexpectedly while sending; retried)."""

    @property
    def succeeded(self) -> bool:
        """2xx is success; redirects are not followed, so 3xx is a failure."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def status_message(self) -> str:
        """A sentence a person understands, for the delivery's `statusMessage`."""
        if self.error is not None:
            return f"Request failed ({self.error_class}): {self.error}"
        if self.succeeded:
            return f"Delivered: the endpoint answered {self.status_code}."
        if self.status_code is not None and 300 <= self.status_code < 400:
            return f"The endpoint answered {self.status_code}; redirects are not followed."
        return f"The endpoint answered {self.status_code}; only 2xx counts as delivered."

    def header(self, name: str) -> str | None:
        """A response header, ignoring case."""
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)

    def as_history(self) -> dict[str, Any] | None:
        """`response` of a Delivery, or None when nothing came back."""
        if self.status_code is None:
            return None
        return {"statusCode": self.status_code, "headers": self.headers, "body": self.body}


def storable(text: str) -> str:
    """Text Postgres can store: it refuses NUL in text and jsonb, which a receiver may send."""
    return text.replace("\x00", "\ufffd")


def stored_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers as history keeps them: at most MAX_STORED_HEADERS of them and
    MAX_STORED_HEADER_BYTES in all (a receiver may send 128 of 8 KiB each), in the order they
    came; when some are left out, HEADERS_CUT says how many."""
    kept: dict[str, str] = {}
    size = left_out = 0
    for name, value in headers:
        name, value = storable(str(name)), storable(value)
        size += len(name.encode()) + len(value.encode())
        if len(kept) >= MAX_STORED_HEADERS or size > MAX_STORED_HEADER_BYTES:
            left_out += 1
        else:
            kept[name] = value
    if left_out:
        kept[HEADERS_CUT] = str(left_out)
    return kept


def build_request(
    target: DeliveryTarget, event: Event, delivery_id: str, user_agent: str
) -> OutboundRequest:
    """Render the body in the webhook's CloudEvents shape and sign those exact bytes.

    A target that cannot be used gives a request carrying its `problem`, which `send` records as
    a failed attempt: bad configuration fails one delivery, never the caller.
    """
    if target.problem is not None:
        return OutboundRequest(target.url, {}, b"", {}, problem=target.problem)
    body = event.render(cloud_event=target.cloud_event)
    now = datetime.now(UTC)
    timestamp = int(now.timestamp())
    service = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
    }
    secrets = target.signing_secrets(now)
    if secrets:
        # Qlik-Signature has room for one: the current secret. During a rotation's grace window
        # webhook-signature carries the previous secret's signature too.
        service["Qlik-Signature"] = qlik_signature(secrets[0], body)
        service["webhook-signature"] = standard_webhooks_signatures(
            secrets, delivery_id, timestamp, body
        )
    # The API refuses reserved names; rows stored before a name was reserved still hold them.
    plain = {n: v for n, v in target.headers.items() if not is_reserved_header(n)}
    hidden = {n: v for n, v in target.encrypted_headers.items() if not is_reserved_header(n)}
    headers = {**plain, **hidden, **service}
    recorded = {**plain, **dict.fromkeys(hidden, OMITTED), **service}
    return OutboundRequest(
        target.url, headers, body, recorded, client_certificate=target.client_certificate
    )


async def send(client: DeliveryClient, request: OutboundRequest, tls: TlsContexts) -> Attempt:
    """POST once, without following redirects; never raises for network, HTTP or data errors.
    A request with a client certificate uses its SSL context from `tls`."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    problem = request.problem
    context: ssl.SSLContext | bool = True  # aiohttp: the session's own
    if problem is None and request.client_certificate is not None:
        try:
            context = tls.context(request.client_certificate)
        except (ssl.SSLError, ValueError, TypeError):
            problem = "the webhook's client certificate and key cannot be loaded; replace them"
    if problem is not None:
        return Attempt(started_at=started, duration_ms=0.0, error=problem, error_class="config")
    try:
        async with client.post(
            request.url,
            data=request.body,
            headers=request.headers,
            allow_redirects=False,
            ssl=context,
        ) as response:
            raw = await response.content.read(MAX_STORED_BODY + 1)
            return Attempt(
                started_at=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
                status_code=response.status,
                headers=stored_headers(response.headers.items()),
                body=storable(raw[:MAX_STORED_BODY].decode(errors="replace")),
                body_truncated=len(raw) > MAX_STORED_BODY,
            )
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        error_class = classify_error(exc)
        hint = (
            NO_CLIENT_CERTIFICATE.get(error_class, "") if request.client_certificate is None else ""
        )
        return Attempt(
            started_at=started,
            duration_ms=(time.perf_counter() - clock) * 1000,
            error=_error_message(exc, request.url) + hint,
            error_class=error_class,
        )


Sender = Callable[[OutboundRequest], Awaitable[Attempt]]
"""POSTs one request: `send` bound to a client and its TlsContexts (`sender`)."""


def sender(client: DeliveryClient, tls: TlsContexts) -> Sender:
    """`send` on `client`, presenting client certificates with contexts from `tls`."""
    return functools.partial(send, client, tls=tls)


NO_CLIENT_CERTIFICATE = {
    "tls-refused-by-receiver": "; a receiver that requires a client certificate (mutual TLS)"
    " refuses the handshake like this, and this webhook has none",
    "disconnected": "; a receiver that requires a client certificate (mutual TLS) ends the"
    " connection like this, and this webhook has none",
}
"""What a failure of each class may mean when the webhook presents no client certificate."""

RECEIVER_REFUSED_ALERTS = CLIENT_CERTIFICATE_REFUSED | {"SSLV3_ALERT_HANDSHAKE_FAILURE"}
"""TLS alerts from a receiver about the client's certificate; a TLS 1.2 server that requires
one and gets none answers `handshake_failure`, a TLS 1.3 one `certificate_required`."""


def _refused_by_receiver(exc: BaseException) -> bool:
    """Whether the receiver sent a TLS alert about the client certificate, along the chain of
    causes: with TLS 1.3 it arrives after the handshake, as the cause of a socket error."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "reason", None) in RECEIVER_REFUSED_ALERTS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _disconnected(exc: BaseException) -> bool:
    """Whether the receiver closed or reset the connection before answering, as most servers
    that require a client certificate do when none comes (rather than sending an alert)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    return isinstance(exc, aiohttp.ClientOSError) and exc.errno == ECONNRESET


def _error_message(exc: BaseException, url: str) -> str:
    """What went wrong, in words; aiohttp does not wrap the IDNA error of an unusable host name.

    aiohttp's connection errors quote the socket's own error, which names the address a host
    resolved to ("Connect call failed ('10.0.0.1', 8000)"): that goes to the tenant, so those
    are reworded to the URL's host (not the error's: through the egress proxy it is the
    address) and the kind of failure only.
    """
    if isinstance(exc, UnicodeError):
        return f"the URL's host name cannot be used ({exc})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        target = URL(url)
        return f"cannot connect to {target.raw_host}:{target.port} ({_connect_failure(exc)})"
    return str(exc) or "no answer within the timeout"


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection failed, without the addresses the socket error quotes."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name could not be resolved"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        return f"certificate not accepted: {getattr(error, 'verify_message', type(error).__name__)}"
    if isinstance(exc.os_error, ssl.SSLError):
        return f"TLS handshake failed: {exc.os_error.reason or type(exc.os_error).__name__}"
    errno = exc.os_error.errno
    return os.strerror(errno).lower() if errno else "connection failed"


def classify_error(exc: BaseException) -> str:
    """The `error_class` of a failed send: a coarse kind a person and the retry policy can act
    on, and from which the hint about a missing client certificate follows."""
    if isinstance(exc, BlockedAddress):
        return "blocked"
    if isinstance(exc, EgressProxyError):
        return "proxy"
    if _refused_by_receiver(exc):
        return "tls-refused-by-receiver"
    # Before ValueError: a certificate error is one too (ssl.CertificateError), yet it is the
    # receiver's to fix (renew, complete the chain), so it is retried like other TLS failures.
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError):
        return "tls"
    if isinstance(exc, ValueError):  # UnicodeError and InvalidURL: an unusable URL or header
        return "config"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorDNSError | UnresolvableHost):
        return "dns"
    if _disconnected(exc):
        return "disconnected"
    return "connection"
