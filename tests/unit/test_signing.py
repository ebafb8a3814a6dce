import hashlib
import hmac

from hookstream_common.signing import qlik_signature


def test_qlik_signature_is_lowercase_hex_hmac_sha256_of_the_body() -> None:
    secret = "a-secret-of-at-least-thirty-two-chars!"
    body = b'{"eventType":"com.qlik.v1.app.created"}'
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert qlik_signature(secret, body) == expected
    assert qlik_signature(secret, body) == qlik_signature(secret, body).lower()


def test_signature_covers_every_byte() -> None:
    secret = "s" * 32
    assert qlik_signature(secret, b"{}") != qlik_signature(secret, b"{ }")
    assert qlik_signature(secret, b"{}") != qlik_signature("t" * 32, b"{}")


def test_known_vector_from_openssl() -> None:
    # printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac key
    expected = "88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"
    assert qlik_signature("key", b'{"a":1}') == expected
