"""The API's OpenAPI document, built from the code and kept in `docs/openapi.json`.

    python -m hookstream_dev.openapi           # write docs/openapi.json
    python -m hookstream_dev.openapi --check   # exit 1, with a diff, if it differs from the code

The document is built from `create_app` without starting anything: no server, no Postgres, no
Kafka (they are only reached by the app's lifespan, which building the document never runs).
"""

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from hookstream_dev import infra

DOCUMENT_PATH = infra.REPO_ROOT / "docs" / "openapi.json"
REGENERATE = "python -m hookstream_dev.openapi"

_DUMMY_SETTINGS = {
    # Required settings; the document does not depend on their values.
    "jwt_key": "openapi-document-only-key-of-32-bytes",
    "jwt_issuer": "openapi",
    "jwt_audience": "openapi",
    "encryption_keys": "openapi-document-only",
    # Addresses nothing ever connects to while the document is built.
    "kafka_bootstrap_servers": "127.0.0.1:9",
    "database_url": "postgresql://openapi@127.0.0.1:9/openapi",
}


def build_document() -> dict[str, Any]:
    """The OpenAPI document of the API, exactly as the running API serves it at /openapi.json."""
    from hookstream_api.main import create_app
    from hookstream_api.settings import ApiSettings

    app = create_app(ApiSettings(_env_file=None, **_DUMMY_SETTINGS))
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def diff_summary(committed: str, current: str, path: Path = DOCUMENT_PATH, limit: int = 60) -> str:
    """A unified diff of the committed document against the code's, cut after `limit` lines."""
    lines = list(
        difflib.unified_diff(
            committed.splitlines(),
            current.splitlines(),
            fromfile=f"{path.name} (committed)",
            tofile=f"{path.name} (from the code)",
            lineterm="",
        )
    )
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(f"... {len(lines) - limit} more diff lines")
    return "\n".join([f"{added} line(s) added, {removed} removed:", *shown])


def check(path: Path = DOCUMENT_PATH) -> str | None:
    """None when `path` matches the code; otherwise what differs and how to fix it."""
    current = render(build_document())
    if not path.exists():
        return f"{path} does not exist; run `{REGENERATE}` to create it."
    committed = path.read_text(encoding="utf-8")
    if committed == current:
        return None
    return (
        f"{path} is out of date with the code; run `{REGENERATE}` and commit the result.\n"
        + diff_summary(committed, current, path)
    )


def write(path: Path = DOCUMENT_PATH) -> bool:
    """Write the document; True if the file changed."""
    text = render(build_document())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m hookstream_dev.openapi`."""
    parser = argparse.ArgumentParser(prog="python -m hookstream_dev.openapi", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the code"
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="%(default)s")
    args = parser.parse_args(argv)
    if args.check:
        problem = check(args.output)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print(f"{args.output} is up to date.")
        return 0
    changed = write(args.output)
    print(f"{'wrote' if changed else 'unchanged:'} {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
