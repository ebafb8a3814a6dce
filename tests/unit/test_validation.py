import pytest

from hookstream_api.validation import (
    InvalidInput,
    check_certificate_revocation,
    check_event_types,
    check_headers,
    check_url,
)
from hookstream_common.request_rules import HTTPS_ONLY, PortSet

DEV_PORTS = PortSet.parse("443,8443")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/qlik",
        "https://hooks.example.com:8443/qlik?x=1",
        "https://receiver.hookstream.test/hooks",
        "https://" + "a" * 63 + ".example.com/",
        "https://ex\u00e4mple.com/",
        "https://" + ".".join(["b" * 60] * 4) + ".com/",
    ],
)
def test_good_urls(url: str) -> None:
    check_url(url, DEV_PORTS)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "user information"),
        ("https://localhost/", "fully qualified"),
        ("https://127.0.0.1/", "IP address"),
        ("https://2130706433/", "IP address"),
        ("https://0x7f.1/", "IP address"),
        ("https://0177.0.0.1/", "IP address"),
        ("https://127.1/", "IP address"),
        ("https://[::1]/", "IP address"),
        ("https://[::ffff:127.0.0.1]/", "IP address"),
        ("https://hooks.example.com:notaport/", "not a valid URL"),
        ("https:///path", "must name a host"),
        ("https://" + "a" * 64 + ".example.com/", "label over 63"),
        ("https://" + "\u00e4" * 70 + ".example.com/", "cannot be encoded"),
        ("https://" + ".".join(["b" * 60] * 5) + ".com/", "over 253"),
        ("https://hooks.example.com:8444/", "allowed port"),
        ("https://hooks.example.com:0/", "allowed port"),
        ("https://hooks.example.com./", "allowed port"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        check_url(url, PortSet.parse("8443"))


def test_only_the_allowed_ports_pass() -> None:
    check_url("https://hooks.example.com/", HTTPS_ONLY)
    with pytest.raises(InvalidInput, match=r"url: must use an allowed port \(443\)"):
        check_url("https://hooks.example.com:8443/", HTTPS_ONLY)
    check_url("https://hooks.example.com:50123/", PortSet.parse("443,1024-65535"))


def test_headers_rules() -> None:
    check_headers("headers", {"X-Team": "data"})
    with pytest.raises(InvalidInput, match="set by the service"):
        check_headers("headers", {"content-type": "text/plain"})
    with pytest.raises(InvalidInput, match="set by the service"):
        check_headers("headers", {"Webhook-Signature": "x"})
    with pytest.raises(InvalidInput, match="the connection or the body's framing"):
        check_headers("headers", {"Transfer-Encoding": "chunked"})
    with pytest.raises(InvalidInput, match="more than once"):
        check_headers("headers", {"X-A": "1", "x-a": "2"})
    with pytest.raises(InvalidInput, match="2048"):
        check_headers("headers", {"X-Big": "v" * 2048})


def test_event_types_must_be_known() -> None:
    known = frozenset({"a", "b"})
    check_event_types(["a"], known)
    with pytest.raises(InvalidInput, match="unknown event type"):
        check_event_types(["a", "zzz"], known)
    with pytest.raises(InvalidInput, match="at least one"):
        check_event_types([], known)


def test_certificate_revocation_checks_are_refused_not_ignored() -> None:
    check_certificate_revocation(False)
    with pytest.raises(InvalidInput, match="checkCertificateRevocation: true is not supported"):
        check_certificate_revocation(True)
