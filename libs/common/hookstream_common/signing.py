"""Request signatures. Pure functions over the exact body bytes."""

import hashlib
import hmac


def qlik_signature(secret: str, body: bytes) -> str:
    """`Qlik-Signature`: lowercase hex HMAC-SHA256 of the body, keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
