"""Client certificates (a Hookstream extension): a webhook may hold a certificate and its private
key (PEM) that every request to it presents, for receivers that require mutual TLS.

The API checks a pair with `inspect` before storing it (the key sealed like the secret); the
senders get one SSL context per certificate from `TlsContexts`, built once and cached, since
building one parses the key and ties aiohttp's pooled connections to that context.
"""

import hashlib
import secrets
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from hookstream_common.http_client import ssl_context

MAX_PEM = 16 * 1024
"""Longest certificate chain or key the API takes, in characters."""
MAX_CONTEXTS = 1024
"""SSL contexts a sender keeps (decision 10); the least recently used one goes first."""


class BadClientCertificate(ValueError):
    """A certificate or key that cannot be used; `part` is `certificate` or `key`. The message
    never quotes the PEM."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part} {reason}")
        self.part = part


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate chain and its private key, in PEM. Holds a secret: never log it."""

    certificate: str
    key: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.certificate}\0{self.key}".encode()).hexdigest()


@dataclass(frozen=True)
class CertificateInfo:
    """What the API shows of a client certificate."""

    subject: str
    not_after: datetime


def describe(certificate: str) -> CertificateInfo:
    """The subject and expiry of the first certificate of a PEM chain."""
    from cryptography import x509  # only here and in `inspect`: the senders start sooner

    try:
        leaf = x509.load_pem_x509_certificates(certificate.encode())[0]
    except ValueError:
        raise BadClientCertificate("certificate", "is not a PEM certificate") from None
    return CertificateInfo(leaf.subject.rfc4514_string(), leaf.not_valid_after_utc)


def inspect(certificate: str, key: str) -> CertificateInfo:
    """Check that `certificate` is a PEM chain and `key` its unencrypted private key; raise
    BadClientCertificate saying which part is wrong.

    An expired certificate is taken: refusing it would make every JSON Patch of the webhook fail
    until it is replaced; its `notAfter` shows it, and the janitor notices it (expiring_soon)."""
    from cryptography import x509

    if "PRIVATE KEY" in certificate:
        raise BadClientCertificate(
            "certificate", "must hold certificates only; the key goes in key"
        )
    info = describe(certificate)
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except TypeError:
        raise BadClientCertificate("key", "must not be encrypted with a password") from None
    except (ValueError, UnsupportedAlgorithm):
        raise BadClientCertificate("key", "is not a PEM private key") from None
    leaf = x509.load_pem_x509_certificates(certificate.encode())[0]
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise BadClientCertificate("key", "does not belong to the certificate")
    return info


class TlsContexts:
    """The SSL context that presents each client certificate, cached by its fingerprint."""

    def __init__(self, extra_ca_file: str | None = None, size: int = MAX_CONTEXTS) -> None:
        self._extra_ca_file = extra_ca_file
        self._size = size
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()

    def context(self, certificate: ClientCertificate) -> ssl.SSLContext:
        """Trusts what the delivery client trusts and presents `certificate`; raises
        ssl.SSLError or ValueError when the stored pair cannot be loaded."""
        fingerprint = certificate.fingerprint
        context = self._contexts.get(fingerprint)
        if context is None:
            context = self._build(certificate)
            self._contexts[fingerprint] = context
            if len(self._contexts) > self._size:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(fingerprint)
        return context

    def _build(self, certificate: ClientCertificate) -> ssl.SSLContext:
        """`ssl` loads a key only from a file: it is written there encrypted with a password of
        the moment, in a private folder removed at once, so it never rests on disk in clear."""
        context = ssl_context(self._extra_ca_file)
        password = secrets.token_bytes(32)
        key = serialization.load_pem_private_key(certificate.key.encode(), password=None)
        sealed = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        with tempfile.TemporaryDirectory(prefix="hookstream-tls-") as folder:
            cert_file, key_file = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert_file.write_text(certificate.certificate)
            key_file.write_bytes(sealed)
            context.load_cert_chain(cert_file, key_file, password=password)
        return context
