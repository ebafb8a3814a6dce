"""Request signatures. Pure functions over the exact body bytes."""

import base64
import hashlib
import hmac


def qlik_signature(secret: str, body: bytes) -> str:
    """`Qlik-Signature`: lowercase hex HMAC-SHA256 of the body, keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_webhooks_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` per the Standard Webhooks spec: `v1,<base64 HMAC-SHA256>`.

    The signed content is `<webhook-id>.<webhook-timestamp>.<body>`, so a receiver that checks
    the timestamp rejects replays. The key is the UTF-8 bytes of the webhook secret: Standard
    Webhooks libraries take it base64-encoded, as `base64(secret)`.
    """
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def standard_webhooks_signatures(
    secrets: list[str], message_id: str, timestamp: int, body: bytes
) -> str:
    """`webhook-signature` with one signature per secret, space-separated, newest first.

    Standard Webhooks lets a header carry several signatures; a receiver accepts the request if
    any one verifies, so during a secret rotation both the old and the new secret verify.
    """
    return " ".join(standard_webhooks_signature(s, message_id, timestamp, body) for s in secrets)
