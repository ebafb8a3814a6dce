"""Development and test tokens; in production your identity provider mints them."""

from datetime import UTC, datetime, timedelta

import jwt

from hookstream_common.tokens import ROLES_CLAIM, TENANT_CLAIM, USER_CLAIM

DEV_ISSUER = "hookstream-dev"
DEV_AUDIENCE = "hookstream"
"""The issuer and audience of development tokens, which `make run` and the tests configure."""


def mint_token(
    key: str,
    tenant_id: str,
    user_id: str,
    roles: list[str],
    *,
    algorithm: str = "HS256",
    issuer: str | None = DEV_ISSUER,
    audience: str | None = DEV_AUDIENCE,
    ttl: timedelta = timedelta(days=1),
) -> str:
    """A signed token with the claims the API reads (hookstream_common.tokens)."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        TENANT_CLAIM: tenant_id,
        USER_CLAIM: user_id,
        ROLES_CLAIM: roles,
        "iat": now,
        "exp": now + ttl,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=algorithm)
