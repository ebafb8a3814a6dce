"""`hookstream`: the command line for operators, beside the client it drives.

    hookstream migrate                                          apply schema migrations
    hookstream keygen                                           print a new encryption key
    hookstream webhooks|deliveries|recover ...                  manage webhooks through the API

Development tokens and sample events are `hookstream-dev`'s (devtools).

Every management command takes `--api` (or HOOKSTREAM_API, default http://127.0.0.1:8000),
`--token` (or HOOKSTREAM_TOKEN) and `--output table|json`. Exit codes: 0 done, 1 the API
refused (invalid input, conflict, limits, its own failure), 2 wrong usage, 3 not found, 4 not
allowed (401, 403), 5 the API could not be reached.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from cryptography.fernet import Fernet

from hookstream_client.client import Client
from hookstream_client.errors import ApiError
from hookstream_client.models import Delivery, PatchOperation, Recovery, Webhook
from hookstream_common.db import migrate
from hookstream_common.settings import CommonSettings

COMMANDS = ("webhooks", "deliveries", "recover")
DEFAULT_API = "http://127.0.0.1:8000"
REFUSED, USAGE, NOT_FOUND, NOT_ALLOWED, UNREACHABLE = 1, 2, 3, 4, 5

# Writable fields as options: (flag, API field, help). Repeated options build lists and maps.
_FIELDS = (
    ("--name", "name", "name of the webhook"),
    ("--url", "url", "https URL to deliver to"),
    ("--description", "description", None),
    ("--filter", "filter", 'e.g. spaceId eq "a1b2"'),
    ("--secret", "secret", "32-64 characters; signs every request"),
    ("--level", "level", "tenant or user"),
    ("--owner-id", "ownerId", None),
)


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `webhooks`, `deliveries` and `recover` to the `hookstream` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api",
        default=os.environ.get("HOOKSTREAM_API", DEFAULT_API),
        help=f"the API's root URL (HOOKSTREAM_API; default {DEFAULT_API})",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("HOOKSTREAM_TOKEN"),
        help="bearer token (HOOKSTREAM_TOKEN)",
    )
    common.add_argument("-o", "--output", choices=("table", "json"), default="table")

    webhooks = commands.add_parser("webhooks", help="list and manage webhooks").add_subparsers(
        dest="action", required=True
    )
    listing = webhooks.add_parser("list", parents=[common], help="list webhooks")
    listing.add_argument("--name", help="case-insensitive substring")
    listing.add_argument("--url", help="case-insensitive substring")
    listing.add_argument("--enabled", choices=("true", "false"))
    listing.add_argument("--event-type", action="append", dest="event_types", default=None)
    listing.add_argument("--sort", help="name, url, createdAt or updatedAt; - for descending")
    _paging(listing)
    webhooks.add_parser("get", parents=[common], help="show a webhook").add_argument("id")
    create = webhooks.add_parser("create", parents=[common], help="register a webhook")
    _writable(create, creating=True)
    update = webhooks.add_parser("update", parents=[common], help="change fields of a webhook")
    update.add_argument("id")
    _writable(update, creating=False)
    delete = webhooks.add_parser("delete", parents=[common], help="delete webhooks")
    delete.add_argument("ids", nargs="+", metavar="id")
    for action in ("enable", "disable"):
        webhooks.add_parser(action, parents=[common], help=f"{action} a webhook").add_argument("id")

    deliveries = commands.add_parser("deliveries", help="a webhook's delivery history")
    actions = deliveries.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="list a webhook's deliveries")
    listing.add_argument("webhook_id")
    listing.add_argument("--status", choices=("success", "fail"))
    listing.add_argument("--event-type")
    listing.add_argument("--since", help="RFC 3339 time, e.g. 2026-11-28T00:00:00Z")
    listing.add_argument("--until", help="RFC 3339 time")
    listing.add_argument("--sort", help="status or triggeredAt; - for descending")
    _paging(listing)
    for action, text in (("get", "show a delivery"), ("resend", "send a delivery again now")):
        parser = actions.add_parser(action, parents=[common], help=text)
        parser.add_argument("webhook_id")
        parser.add_argument("delivery_id")

    recover = commands.add_parser(
        "recover", parents=[common], help="queue a webhook's failed deliveries again"
    )
    recover.add_argument("webhook_id")
    recover.add_argument("--since", required=True, help="RFC 3339 time")
    recover.add_argument("--until", help="RFC 3339 time; default now")
    recover.add_argument("--wait", action="store_true", help="wait until everything is queued")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="rows per page (1-100)")
    parser.add_argument("--all", action="store_true", help="follow the pages to the end")


def _writable(parser: argparse.ArgumentParser, creating: bool) -> None:
    for flag, _, text in _FIELDS:
        parser.add_argument(flag, required=creating and flag in ("--name", "--url"), help=text)
    parser.add_argument(
        "--event-type",
        action="append",
        dest="event_types",
        required=creating,
        help="repeat for several",
    )
    parser.add_argument("--header", action="append", metavar="NAME=VALUE", help="repeat")
    parser.add_argument("--encrypted-header", action="append", metavar="NAME=VALUE")
    parser.add_argument("--cloud-events", action=argparse.BooleanOptionalAction, default=None)
    if creating:
        parser.add_argument("--disabled", action="store_true", help="start disabled")


def run(args: argparse.Namespace) -> int:
    """Run a management command; the exit code says how it went."""
    if not args.token:
        print("error: no token: pass --token or set HOOKSTREAM_TOKEN", file=sys.stderr)
        return USAGE
    try:
        with Client(args.api, args.token) as client:
            command = _COMMANDS[(args.command, getattr(args, "action", None))]
            return command(client, args) or 0
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return {404: NOT_FOUND, 401: NOT_ALLOWED, 403: NOT_ALLOWED}.get(exc.status, REFUSED)
    except httpx.TransportError as exc:
        print(f"error: cannot reach the API at {args.api}: {exc}", file=sys.stderr)
        return UNREACHABLE
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE


def _list_webhooks(client: Client, args: argparse.Namespace) -> None:
    filters = _filters(args, "name", "url", "enabled", "event_types")
    rows = client.iter_webhooks(**filters) if args.all else client.list_webhooks(**filters).data
    _show_list(args, rows, _WEBHOOK_COLUMNS)


def _create_webhook(client: Client, args: argparse.Namespace) -> None:
    body = _fields(args)
    if args.disabled:
        body["enabled"] = False
    _show(args, client.create_webhook(body))


def _update_webhook(client: Client, args: argparse.Namespace) -> None:
    changes = _fields(args)
    if not changes:
        raise ValueError("nothing to change: give at least one field option")
    client.patch_webhook(
        args.id, [PatchOperation(op="replace", path=f"/{k}", value=v) for k, v in changes.items()]
    )
    _show(args, client.get_webhook(args.id))


def _delete_webhooks(client: Client, args: argparse.Namespace) -> None:
    for webhook_id in args.ids:
        client.delete_webhook(webhook_id)
        if args.output == "table":
            print(f"deleted {webhook_id}")
    if args.output == "json":
        print(json.dumps({"deleted": args.ids}))


def _switch(enabled: bool) -> Callable[[Client, argparse.Namespace], None]:
    def switch(client: Client, args: argparse.Namespace) -> None:
        if enabled:
            client.enable_webhook(args.id)
        else:
            client.disable_webhook(args.id)
        _show(args, client.get_webhook(args.id))

    return switch


def _list_deliveries(client: Client, args: argparse.Namespace) -> None:
    filters = _filters(args, "status", "event_type", "since", "until")
    if args.all:
        rows: Iterable[Delivery] = client.iter_deliveries(args.webhook_id, **filters)
    else:
        rows = client.list_deliveries(args.webhook_id, **filters).data
    _show_list(args, rows, _DELIVERY_COLUMNS)


def _filters(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """A list's options as the client's filters: their dests are the filters' names."""
    return {name: getattr(args, name) for name in (*names, "sort", "limit")}


def _recover(client: Client, args: argparse.Namespace) -> int:
    recovery = client.recover_deliveries(args.webhook_id, args.since, args.until)
    while args.wait and recovery.state == "running":
        time.sleep(0.5)
        recovery = client.get_recovery(args.webhook_id, recovery.id)
    _show(args, recovery)
    return REFUSED if recovery.state in ("failed", "cancelled") else 0


_COMMANDS: dict[tuple[str, str | None], Callable[[Client, argparse.Namespace], int | None]] = {
    ("webhooks", "list"): _list_webhooks,
    ("webhooks", "get"): lambda client, args: _show(args, client.get_webhook(args.id)),
    ("webhooks", "create"): _create_webhook,
    ("webhooks", "update"): _update_webhook,
    ("webhooks", "delete"): _delete_webhooks,
    ("webhooks", "enable"): _switch(True),
    ("webhooks", "disable"): _switch(False),
    ("deliveries", "list"): _list_deliveries,
    ("deliveries", "get"): lambda client, args: _show(
        args, client.get_delivery(args.webhook_id, args.delivery_id)
    ),
    ("deliveries", "resend"): lambda client, args: _show(
        args, client.resend_delivery(args.webhook_id, args.delivery_id)
    ),
    ("recover", None): _recover,
}


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The API fields the options set, and only those."""
    fields: dict[str, Any] = {
        field: getattr(args, flag[2:].replace("-", "_"))
        for flag, field, _ in _FIELDS
        if getattr(args, flag[2:].replace("-", "_")) is not None
    }
    if args.event_types:
        fields["eventTypes"] = args.event_types
    for option, field in (("header", "headers"), ("encrypted_header", "encryptedHeaders")):
        pairs = getattr(args, option)
        if pairs:
            fields[field] = dict(_pair(item) for item in pairs)
    if args.cloud_events is not None:
        fields["enableCloudEventDelivery"] = args.cloud_events
    return fields


def _pair(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"{item!r}: headers are NAME=VALUE")
    return name, value


Column = tuple[str, Callable[[Any], object]]
_WEBHOOK_COLUMNS: list[Column] = [
    ("ID", lambda w: w.id),
    ("NAME", lambda w: w.name),
    ("ENABLED", lambda w: "yes" if w.enabled else f"no ({w.disabled_reason_code or 'by user'})"),
    ("EVENT TYPES", lambda w: ",".join(w.event_types)),
    ("URL", lambda w: w.url),
]
_DELIVERY_COLUMNS: list[Column] = [
    ("ID", lambda d: d.id),
    ("STATUS", lambda d: d.status),
    ("EVENT TYPE", lambda d: d.event_type),
    ("TRIGGERED AT", lambda d: d.triggered_at.isoformat()),
    ("MESSAGE", lambda d: d.status_message),
]


def _show_list(args: argparse.Namespace, rows: Iterable[Any], columns: list[Column]) -> None:
    items = list(rows)
    if args.output == "json":
        print(json.dumps([item.to_json() for item in items], indent=2))
        return
    table = [[name for name, _ in columns]]
    table += [[str(cell(item)) for _, cell in columns] for item in items]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        print(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )


def _show(args: argparse.Namespace, item: Webhook | Delivery | Recovery) -> None:
    document = item.to_json()
    if args.output == "json":
        print(json.dumps(document, indent=2))
        return
    width = max(len(key) for key in document)
    for key, value in document.items():
        text = value if isinstance(value, str) else json.dumps(value)
        print(f"{key.ljust(width)}  {text}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookstream", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the schema migrations not applied yet")
    commands.add_parser("keygen", help="print a new key for HOOKSTREAM_ENCRYPTION_KEYS")
    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hookstream` command."""
    args = _parser().parse_args(argv)
    if args.command in COMMANDS:
        return run(args)
    if args.command == "migrate":
        applied = asyncio.run(migrate(CommonSettings().database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    elif args.command == "keygen":
        print(Fernet.generate_key().decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
