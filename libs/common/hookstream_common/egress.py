"""The egress proxy setting: an HTTP CONNECT proxy every delivery leaves through. Pure logic.

Its credentials are taken out of the URL here, once, into the `Proxy-Authorization` header, so
the URL that errors, logs and aiohttp's connection keys may name never carries them.
"""

from dataclasses import dataclass, field

from aiohttp import encode_basic_auth
from yarl import URL


@dataclass(frozen=True)
class EgressProxy:
    """`http://host:port` of the proxy, and the headers its CONNECT requests carry."""

    url: URL
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    """`Proxy-Authorization` when the URL carried credentials: kept out of `repr`."""

    @classmethod
    def parse(cls, text: str) -> "EgressProxy":
        """From the setting; a ValueError that never quotes it (it may hold a password)."""
        try:
            url = URL(text.strip())
            host = url.raw_host
        except ValueError:
            raise ValueError("is not a URL") from None
        if url.scheme != "http" or not host:
            raise ValueError("must be an HTTP CONNECT proxy's URL: http://host:port")
        if url.path not in ("", "/") or url.query_string or url.fragment:
            raise ValueError("must name only the proxy, without a path, query or fragment")
        headers = {}
        if url.user is not None:
            headers["Proxy-Authorization"] = encode_basic_auth(url.user, url.password or "")
        return cls(URL.build(scheme="http", host=host, port=url.port), headers)

    @property
    def host(self) -> str:
        """The proxy's host name or address, as the connector resolves it."""
        return self.url.raw_host or ""
