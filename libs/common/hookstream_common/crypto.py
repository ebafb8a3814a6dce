"""Encryption at rest for webhook secrets and encrypted headers.

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with a list of keys: the first encrypts,
all decrypt, so a key is rotated by putting a new one first, re-saving, then dropping the old one.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class UndecryptableSecret(ValueError):
    """No configured key opens a stored secret: its key was dropped before the row was re-saved."""


class SecretBox:
    """Encrypts and decrypts small secrets with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, plaintext: str) -> bytes:
        """Encrypt with the newest key."""
        return self._fernet.encrypt(plaintext.encode())

    def open(self, token: bytes) -> str:
        """Decrypt with whichever configured key made the token; `UndecryptableSecret` if none."""
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise UndecryptableSecret(
                "none of the service's encryption keys decrypts it; set it again"
            ) from None


def parse_keys(value: str) -> list[str]:
    """Keys from a comma-separated setting, newest first."""
    return [key.strip() for key in value.split(",") if key.strip()]
