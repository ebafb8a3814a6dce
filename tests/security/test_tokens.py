"""Tokens the API must refuse, and settings it must not start with (issue 18 item 5: a token
with a foreign `aud` and `iss` was accepted, there was no maximum lifetime and no leeway, and a
short HS256 key only warned)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from hookstream_api.auth import VerifiedTokens, verify_token
from hookstream_api.errors import ApiError
from hookstream_api.settings import ApiSettings
from hookstream_dev.tokens import mint_token

KEY = "a-test-key-that-is-long-enough-0123456789"
REQUIRED = {"jwt_key": KEY, "jwt_issuer": "idp", "jwt_audience": "hookstream"}


def settings(**overrides: Any) -> ApiSettings:
    return ApiSettings(_env_file=None, **{**REQUIRED, **overrides})


def token(**claims: Any) -> str:
    now = datetime.now(UTC)
    base = {"tenantId": "t", "sub": "u", "iss": "idp", "aud": "hookstream", "iat": now}
    return jwt.encode({**base, "exp": now + timedelta(hours=1), **claims}, KEY)


def refused(text: str, config: ApiSettings | None = None) -> str:
    with pytest.raises(ApiError) as raised:
        verify_token(text, config or settings())
    assert raised.value.status == 401
    return raised.value.detail


def test_a_token_with_the_configured_issuer_and_audience_is_accepted() -> None:
    assert verify_token(token(), settings()).tenant_id == "t"
    assert verify_token(token(aud=["other", "hookstream"]), settings()).user_id == "u"


@pytest.mark.parametrize(
    "claims",
    [{"aud": "someone-else"}, {"iss": "another-idp"}, {"aud": None}, {"iss": None}],
)
def test_a_foreign_or_missing_issuer_or_audience_is_refused(claims: dict[str, Any]) -> None:
    text = token(**{k: v for k, v in claims.items() if v is not None})
    if None in claims.values():
        payload = jwt.decode(text, options={"verify_signature": False})
        for name in claims:
            payload.pop(name)
        text = jwt.encode(payload, KEY)
    refused(text)


def test_a_token_that_lives_longer_than_the_maximum_is_refused() -> None:
    now = datetime.now(UTC)
    detail = refused(token(iat=now, exp=now + timedelta(days=365)))
    assert "longer than 86400 s" in detail
    assert verify_token(token(iat=now, exp=now + timedelta(days=1)), settings())


def test_a_token_without_iat_is_refused() -> None:
    payload = jwt.decode(token(), options={"verify_signature": False})
    del payload["iat"]
    refused(jwt.encode(payload, KEY))


def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    now = datetime.now(UTC)
    just_expired = token(iat=now - timedelta(hours=1), exp=now - timedelta(seconds=10))
    assert verify_token(just_expired, settings()).tenant_id == "t"
    assert "expired" in refused(just_expired, settings(jwt_leeway_seconds=0))
    long_expired = token(iat=now - timedelta(hours=1), exp=now - timedelta(seconds=40))
    assert "expired" in refused(long_expired)


def test_development_tokens_carry_the_development_issuer_and_audience() -> None:
    config = settings(jwt_issuer="hookstream-dev")
    assert verify_token(mint_token(KEY, "t", "u", []), config).tenant_id == "t"


@pytest.mark.parametrize("missing", ["jwt_issuer", "jwt_audience"])
def test_the_api_does_not_start_without_an_issuer_and_an_audience(missing: str) -> None:
    values = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        ApiSettings(_env_file=None, **values)


def test_the_api_does_not_start_with_a_short_hs256_key() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings(jwt_key="short-key")
    assert settings(jwt_key="k" * 32)


def test_algorithm_none_cannot_be_configured() -> None:
    with pytest.raises(ValidationError):
        settings(jwt_algorithm="none")


def test_an_accepted_token_is_remembered_only_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or decode(*a, **k))
    now = datetime.now(UTC)
    clock = [now.timestamp()]
    tokens = VerifiedTokens(settings(jwt_leeway_seconds=5), clock=lambda: clock[0])
    text = token(iat=now, exp=now + timedelta(seconds=60))
    assert tokens.verify(text).tenant_id == "t"
    clock[0] += 64  # within the leeway: as jwt.decode would, still accepted
    assert tokens.verify(text).user_id == "u"
    assert len(decoded) == 1
    clock[0] += 2  # past expiry and leeway: jwt.decode checks it again
    tokens.verify(text)
    assert len(decoded) == 2


def test_a_refused_token_is_never_remembered_and_the_oldest_accepted_goes_first() -> None:
    tokens = VerifiedTokens(settings(), size=2)
    foreign = token(aud="someone-else")
    for _ in range(2):
        with pytest.raises(ApiError):
            tokens.verify(foreign)
    first, second, third = (token(sub=f"u{n}") for n in range(3))
    for text in (first, second, third):
        tokens.verify(text)
    assert list(tokens._accepted) == [second, third]
