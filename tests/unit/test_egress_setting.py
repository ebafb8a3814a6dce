"""HOOKSTREAM_EGRESS_PROXY: parsed once, its credentials never in a URL, a repr or an error."""

import base64

import pytest
from pydantic import ValidationError

from hookstream_common.egress import EgressProxy
from hookstream_common.settings import DeliverySettings


def test_credentials_leave_the_url_for_the_connect_header() -> None:
    proxy = EgressProxy.parse("http://hook%40stream:pa%3Ass@smokescreen.egress.svc:4750/")
    assert str(proxy.url) == "http://smokescreen.egress.svc:4750"
    assert proxy.host == "smokescreen.egress.svc"
    scheme, _, encoded = proxy.headers["Proxy-Authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded)) == ("Basic", b"hook@stream:pa:ss")
    assert "pa:ss" not in repr(proxy) and encoded not in repr(proxy)


def test_a_proxy_without_credentials_sends_no_header() -> None:
    proxy = EgressProxy.parse("http://[fd00::1]:3128")
    assert (str(proxy.url), proxy.host, proxy.headers) == ("http://[fd00::1]:3128", "fd00::1", {})


@pytest.mark.parametrize(
    "text",
    [
        "https://u:hunter2@proxy.example.com:443",  # TLS to the proxy: not supported
        "socks5://u:hunter2@proxy.example.com:1080",
        "http://u:hunter2@proxy.example.com:3128/path",
        "http://u:hunter2@proxy.example.com:3128?x=1",
        "u:hunter2@proxy.example.com:3128",
        "http://u:hunter2@:3128",
    ],
)
def test_an_unusable_proxy_stops_the_start_without_echoing_it(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKSTREAM_EGRESS_PROXY", text)
    with pytest.raises(ValidationError, match="egress_proxy") as raised:
        DeliverySettings()
    assert "hunter2" not in str(raised.value)


def test_the_setting_is_secret_and_empty_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKSTREAM_EGRESS_PROXY", "http://u:hunter2@127.0.0.1:4750")
    settings = DeliverySettings()
    assert settings.egress == EgressProxy.parse("http://u:hunter2@127.0.0.1:4750")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    monkeypatch.setenv("HOOKSTREAM_EGRESS_PROXY", "")
    assert DeliverySettings().egress is None
    monkeypatch.delenv("HOOKSTREAM_EGRESS_PROXY")
    assert DeliverySettings().egress is None
