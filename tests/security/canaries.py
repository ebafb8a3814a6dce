"""Canaries: stored values no response, log line, metric or history row may ever carry.

A webhook is created whose signing secret, encrypted header value and client key are unique,
searchable strings; whatever the suite then does to it, finding any of them anywhere an attacker
or an operator could read is a leak (DESIGN decision 12: never echo what you store).
"""

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import trustme

ENCRYPTED_HEADER = "X-Canary-Key"
_CLIENT = trustme.CA().issue_cert("canary-client.example.com")


@dataclass(frozen=True)
class Canaries:
    """One secret, one encrypted header value and one client key, all unique to a test
    session."""

    secret: str = f"canary-secret-{secrets.token_hex(16)}"
    header_value: str = f"canary-header-{secrets.token_hex(12)}"
    client_certificate: str = _CLIENT.cert_chain_pems[0].bytes().decode()
    client_key: str = field(default=_CLIENT.private_key_pem.bytes().decode(), repr=False)

    @property
    def key_line(self) -> str:
        """The first line of the client key's base64 body, which carries the private scalar
        (the next one holds the public key, which the certificate shows anyway)."""
        return self.client_key.splitlines()[1]

    @property
    def values(self) -> tuple[str, ...]:
        return (self.secret, self.header_value, self.key_line)

    def webhook_fields(self) -> dict[str, object]:
        """What a webhook body needs to carry every canary."""
        return {
            "secret": self.secret,
            "encryptedHeaders": {ENCRYPTED_HEADER: self.header_value},
            "clientCertificate": {"certificate": self.client_certificate, "key": self.client_key},
        }

    def found_in(self, text: str) -> list[str]:
        """The canaries present in `text` (empty when it leaks nothing)."""
        return [value for value in self.values if value in text]

    def found_in_logs(self, log_dir: Path) -> dict[str, list[str]]:
        """Each service log under `log_dir` that carries a canary, with the ones it carries."""
        found = {}
        for log in sorted(log_dir.glob("*.log")):
            leaked = self.found_in(log.read_text(errors="replace"))
            if leaked:
                found[log.name] = leaked
        return found

    async def found_in_history(self, database_url: str) -> list[str]:
        """The history and audit tables whose rows carry a canary as text (request headers,
        bodies)."""
        conn = await asyncpg.connect(database_url)
        try:
            leaked = []
            tables = ("deliveries", "delivery_attempts", "event_bodies", "outbox", "audit_events")
            for table in tables:
                hits = await conn.fetchval(
                    f"SELECT count(*) FROM {table} t WHERE t::text LIKE ANY($1::text[])",
                    [f"%{value}%" for value in self.values],
                )
                if hits:
                    leaked.append(table)
            return leaked
        finally:
            await conn.close()
