"""The error class of a failed send, and the hint it gives when the webhook has no client
certificate: a receiver's TLS alert about the client certificate is `tls-refused-by-receiver`,
while our refusal of the receiver's certificate is plain `tls` and gets no hint.

The TLS cases run real handshakes against OpenSSL servers of the standard library (the
project's aiohttp receiver resets the connection instead of sending an alert, which the e2e
client certificate tests cover as `disconnected`)."""

import socket
import ssl
import threading
from collections.abc import Iterator
from errno import ECONNRESET
from ipaddress import ip_network
from pathlib import Path

import aiohttp
import pytest
import trustme

from hookstream_common.client_certs import TlsContexts
from hookstream_common.delivery import OutboundRequest, classify_error, send
from hookstream_common.http_client import PortSet, client_session

RECEIVER_CA = trustme.CA()
RECEIVER = RECEIVER_CA.issue_cert("receiver.hookstream.test")
CLIENT_CA = trustme.CA()
HINT = "this webhook has none"


def _server_context(maximum: ssl.TLSVersion, issuer: trustme.CA) -> ssl.SSLContext:
    """A receiver's context that requires a client certificate `CLIENT_CA` issued, serving
    a certificate `issuer` issued."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issuer.issue_cert("receiver.hookstream.test").configure_cert(context)
    CLIENT_CA.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.maximum_version = maximum
    return context


def _serve(listener: socket.socket, context: ssl.SSLContext) -> None:
    """Accept until the listener closes; OpenSSL sends its alert when a handshake fails."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1024)
        except (ssl.SSLError, OSError):
            conn.close()


@pytest.fixture
def requiring_client_certificates(request: pytest.FixtureRequest) -> Iterator[int]:
    """The port of a receiver that requires a client certificate; `request.param`: the
    highest TLS version it speaks, and the CA of its own certificate."""
    maximum, issuer = request.param
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(
        target=_serve, args=(listener, _server_context(maximum, issuer)), daemon=True
    )
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
    listener.close()
    thread.join(timeout=5)


async def _send_to(port: int, tmp_path: Path) -> tuple[str | None, str]:
    ca_file = tmp_path / "receiver-ca.pem"
    RECEIVER_CA.cert_pem.write_to_path(str(ca_file))
    async with client_session(
        allow=(ip_network("127.0.0.0/8"),),
        ports=PortSet.parse("1-65535"),
        static_hosts={"receiver.hookstream.test": "127.0.0.1"},
        extra_ca_file=str(ca_file),
    ) as session:
        request = OutboundRequest(f"https://receiver.hookstream.test:{port}/", {}, b"{}", {})
        attempt = await send(session, request, TlsContexts())
    return attempt.error_class, attempt.status_message()


@pytest.mark.parametrize(
    "requiring_client_certificates",
    [(ssl.TLSVersion.TLSv1_3, RECEIVER_CA), (ssl.TLSVersion.TLSv1_2, RECEIVER_CA)],
    ids=["TLS 1.3: certificate_required", "TLS 1.2: handshake_failure"],
    indirect=True,
)
async def test_a_receivers_alert_about_the_client_certificate_is_its_own_class(
    requiring_client_certificates: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    error_class, message = await _send_to(requiring_client_certificates, tmp_path)
    if error_class == "disconnected" and "TLS 1.3" in request.node.callspec.id:
        # TLS 1.3 sends the alert after the client has finished its side of the handshake and
        # written the request; the receiver closes with that request unread, so its reset can
        # overtake the alert. The hint must come either way.
        assert message.endswith("ends the connection like this, and this webhook has none")
        return
    assert error_class == "tls-refused-by-receiver", message
    assert message.endswith("refuses the handshake like this, and this webhook has none")


@pytest.mark.parametrize(
    "requiring_client_certificates",
    [(ssl.TLSVersion.TLSv1_3, trustme.CA())],
    ids=["receiver certificate from an unknown CA"],
    indirect=True,
)
async def test_our_refusal_of_the_receivers_certificate_gets_no_hint(
    requiring_client_certificates: int, tmp_path: Path
) -> None:
    error_class, message = await _send_to(requiring_client_certificates, tmp_path)
    assert error_class == "tls", message
    assert "certificate not accepted" in message and HINT not in message


async def test_a_closed_port_is_a_connection_error_without_a_hint(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    error_class, message = await _send_to(closed, tmp_path)
    assert error_class == "connection" and HINT not in message, message


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(ECONNRESET, "Connection reset by peer"),
    ],
    ids=["disconnect", "reset"],
)
def test_a_connection_ended_before_the_answer_is_disconnected(error: Exception) -> None:
    assert classify_error(error) == "disconnected"
