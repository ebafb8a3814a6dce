"""Bearer-token authentication: who is calling, for which tenant, with which roles."""

import time
from collections.abc import Callable
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
    return _verified(token, settings)[0]


def _verified(token: str, settings: ApiSettings) -> tuple[Principal, float]:
    """The token's principal, and the time (epoch seconds) until which it is accepted."""
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
    principal = Principal(tenant, user, frozenset(r for r in roles if isinstance(r, str)))
    return principal, claims["exp"] + settings.jwt_leeway_seconds


class VerifiedTokens:
    """The tokens this process has accepted, until they expire. A console polls with one token;
    checking its signature and claims on every request cost the webhook list a sixteenth of its
    CPU. Only accepted tokens are kept, and each only until the moment `jwt.decode` would refuse
    it as expired; the oldest go first when `size` are kept."""

    def __init__(
        self, settings: ApiSettings, size: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._size = size
        self._clock = clock
        self._accepted: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        """As `verify_token`, from memory for a token accepted before and not yet expired."""
        known = self._accepted.get(token)
        if known is not None and self._clock() < known[1]:
            return known[0]
        self._accepted.pop(token, None)
        principal, until = _verified(token, self._settings)
        if len(self._accepted) >= self._size:
            del self._accepted[next(iter(self._accepted))]
        self._accepted[token] = (principal, until)
        return principal


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
    return request.app.state.tokens.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
