"""The management console: a single-page app at /console, a client of the public REST API."""

from hookstream_api.console.router import mount_console

__all__ = ["mount_console"]
