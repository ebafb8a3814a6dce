"""The bearer tokens the API accepts: JWTs with tenant, user and role claims."""

from datetime import UTC, datetime, timedelta

import jwt

TENANT_CLAIM = "tenantId"
USER_CLAIM = "sub"
ROLES_CLAIM = "roles"
TENANT_ADMIN = "TenantAdmin"


def mint_token(
    key: str,
    tenant_id: str,
    user_id: str,
    roles: list[str],
    *,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: str | None = None,
    ttl: timedelta = timedelta(days=1),
) -> str:
    """A signed token for development and tests; in production your identity provider mints them."""
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
