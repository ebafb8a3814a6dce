"""`hookstream`: the command line for operators.

    hookstream migrate                                          apply schema migrations
    hookstream keygen                                           print a new encryption key
    hookstream webhooks|deliveries|recover ...                  manage webhooks through the API

Development tokens and sample events are `hookstream-dev`'s (devtools).
"""

import argparse
import asyncio
import sys

from cryptography.fernet import Fernet

from hookstream_client import cli as management
from hookstream_common.db import migrate
from hookstream_common.settings import CommonSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookstream", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the schema migrations not applied yet")
    commands.add_parser("keygen", help="print a new key for HOOKSTREAM_ENCRYPTION_KEYS")
    management.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hookstream` command."""
    args = _parser().parse_args(argv)
    if args.command in management.COMMANDS:
        return management.run(args)
    if args.command == "migrate":
        applied = asyncio.run(migrate(CommonSettings().database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    elif args.command == "keygen":
        print(Fernet.generate_key().decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
