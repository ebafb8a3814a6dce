"""Bearer-token authentication: who is calling, for which tenant, with which roles."""

from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hookstream_api.errors import ApiError
from hookstream_api.settings import ApiSettings
from hookstream_common.tokens import ROLES_CLAIM, TENANT_ADMIN, TENANT_CLAIM, USER_CLAIM


@dataclass(frozen=True)
class Principal:
    """The caller, as the verified token says."""

    tenant_id: str
    user_id: str
    roles: frozenset[str]

    @property
    def is_tenant_admin(self) -> bool:
        """A TenantAdmin sees and manages every webhook of the tenant."""
        return TENANT_ADMIN in self.roles


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "HOOKSTREAM-401", detail, "Unauthorized")


def verify_token(token: str, settings: ApiSettings) -> Principal:
    """Check signature, expiry, issuer, audience and lifetime; require the tenant and user
    claims."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key,
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired; get a new one.") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"The token is not valid: {exc}.") from None
    if claims["exp"] - claims["iat"] > settings.jwt_max_lifetime_seconds:
        raise _unauthorized(
            f"The token is valid for longer than {settings.jwt_max_lifetime_seconds} s;"
            " get one with a shorter lifetime."
        )
    tenant, user = claims.get(TENANT_CLAIM), claims.get(USER_CLAIM)
    if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
        raise _unauthorized(f"The token must carry the `{TENANT_CLAIM}` and `{USER_CLAIM}` claims.")
    roles = claims.get(ROLES_CLAIM) or []
    return Principal(tenant, user, frozenset(r for r in roles if isinstance(r, str)))


bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="A JWT with the tenant id, user id and roles claims.",
    auto_error=False,
)
"""Declares the bearer scheme in the OpenAPI document; a missing token is our own 401 below."""


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The dependency every webhook route takes."""
    if credentials is None:
        raise _unauthorized("Send `Authorization: Bearer <token>`.")
    return verify_token(credentials.credentials, request.app.state.settings)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
