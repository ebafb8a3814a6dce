"""`hookstream-dev`: tokens and sample events for a local installation.

    hookstream-dev token --tenant T --user U [--role TenantAdmin]   mint a development token
    hookstream-dev emit --tenant T [--type com.qlik.v1.app.created]  publish a sample event

It reads `.hookstream/dev.env`, which `make run` writes, for the key the API verifies with.
"""

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from hookstream_common import catalogue
from hookstream_common.catalogue import event_type_names
from hookstream_common.sdk import EventPublisher
from hookstream_common.settings import CommonSettings
from hookstream_dev.events import sample_event
from hookstream_dev.stack import DEV_ENV
from hookstream_dev.tokens import DEV_AUDIENCE, DEV_ISSUER, mint_token


class DevSettings(CommonSettings):
    """The local installation's addresses, and the key `make run` gave the API."""

    model_config = SettingsConfigDict(env_prefix="HOOKSTREAM_", extra="ignore", env_file=DEV_ENV)

    jwt_key: str = Field("", description="The key the API verifies tokens with (HS256 secret).")
    jwt_issuer: str = Field(DEV_ISSUER, description="The `iss` the API requires.")
    jwt_audience: str = Field(DEV_AUDIENCE, description="The `aud` the API requires.")
    event_types_file: Path | None = Field(None, description="The API's extra event types.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookstream-dev", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a development bearer token")
    token.add_argument("--tenant", required=True)
    token.add_argument("--user", required=True)
    token.add_argument("--role", action="append", default=[], help="repeat for several roles")
    token.add_argument("--hours", type=float, default=24.0)
    emit = commands.add_parser("emit", help="publish a sample event for a tenant")
    emit.add_argument("--tenant", required=True)
    emit.add_argument("--user", default="demo-user")
    emit.add_argument("--type", default="com.qlik.v1.app.created", dest="event_type")
    emit.add_argument("--count", type=int, default=1)
    return parser


async def _emit(settings: DevSettings, args: argparse.Namespace) -> None:
    async with EventPublisher(
        settings.kafka_bootstrap_servers, settings.topic_prefix, settings.kafka_security
    ) as pub:
        for _ in range(args.count):
            event_id = await pub.publish(sample_event(args.event_type, args.tenant, args.user))
            print(f"published {args.event_type} {event_id} for tenant {args.tenant}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hookstream-dev` command."""
    args = _parser().parse_args(argv)
    settings = DevSettings()
    if args.command == "token":
        if not settings.jwt_key:
            sys.exit("HOOKSTREAM_JWT_KEY is not set: run `make run` first or export the API's key")
        ttl = timedelta(hours=args.hours)
        print(
            mint_token(
                settings.jwt_key,
                args.tenant,
                args.user,
                args.role,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl=ttl,
            )
        )
    elif args.command == "emit":
        known = event_type_names(catalogue.load(settings.event_types_file))
        if args.event_type not in known:
            sys.exit(f"unknown event type {args.event_type!r}; known: {sorted(known)}")
        asyncio.run(_emit(settings, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
