"""Signatures against vectors computed outside this code base, never by repeating its HMAC call."""

import base64
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookstream_common.signing import qlik_signature, standard_webhooks_signature

SECRET = "a-secret-of-at-least-thirty-two-chars!"
# The message of the Standard Webhooks spec's example (its key is random bytes, not a text
# secret as a webhook's is, so the key here is SECRET).
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'


def test_qlik_signature_known_vectors() -> None:
    # printf '%s' '{"test": 2432232314}' | openssl dgst -sha256 -hmac "$SECRET"
    assert qlik_signature(SECRET, PAYLOAD) == (
        "a621b6640632b8156cea43b39bbc568d49fb23b30148d1e5b3abcd66023757fb"
    )
    # printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac key
    assert qlik_signature("key", b'{"a":1}') == (
        "88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"
    )


def test_qlik_signature_covers_every_byte_and_the_key() -> None:
    assert qlik_signature(SECRET, b"{}") != qlik_signature(SECRET, b"{ }")
    assert qlik_signature(SECRET, b"{}") != qlik_signature(SECRET[:-1] + "?", b"{}")


def test_standard_webhooks_signature_known_vector() -> None:
    # printf '%s' "$MESSAGE_ID.$TIMESTAMP.$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary
    #   | base64
    expected = "v1,B4DuDpwb/y3z9+keFOw3Xm3HF5fdZGyDX2AdsRs6qWs="
    assert standard_webhooks_signature(SECRET, MESSAGE_ID, TIMESTAMP, PAYLOAD) == expected


def test_standard_webhooks_reference_library_signs_the_same() -> None:
    """The spec's own library, given `base64(secret)` as the README tells receivers to."""
    reference = StandardWebhook(base64.b64encode(SECRET.encode()).decode())
    at = datetime.fromtimestamp(TIMESTAMP, tz=UTC)
    assert reference.sign(MESSAGE_ID, at, PAYLOAD.decode()) == standard_webhooks_signature(
        SECRET, MESSAGE_ID, TIMESTAMP, PAYLOAD
    )


def test_the_reference_library_reproduces_the_spec_example() -> None:
    """Guards the test above: the library agrees with the spec's published example vector."""
    spec = StandardWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed = spec.sign(MESSAGE_ID, datetime.fromtimestamp(TIMESTAMP, tz=UTC), PAYLOAD.decode())
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
