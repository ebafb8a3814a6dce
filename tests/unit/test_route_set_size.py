"""A tenant's route set always fits in one Kafka record: its worst case, from the API's limits.

The relay publishes every webhook of a tenant as one record on the compacted webhooks topic; a
record over the broker's limit (1 MiB by default) could never be published. So every field that
goes into a route is bounded by the API, and the worst case of 100 webhooks is computed here.
"""

import re
import uuid

import orjson
from hypothesis import given
from hypothesis import strategies as st

from hookstream_api.settings import ApiSettings
from hookstream_common.routing import Route, TenantRoutes
from hookstream_common.webhook_fields import (
    MAX_EVENT_TYPE,
    MAX_EVENT_TYPES,
    MAX_FILTER,
    MAX_OWNER_ID,
    MULTI_LINE,
    SINGLE_LINE,
)

KAFKA_MAX_REQUEST = 1024 * 1024
"""aiokafka's `max_request_size` and, within a few bytes, the broker's `message.max.bytes`."""
RECORD_OVERHEAD = 100
"""Record batch and record headers around the key and value, generously."""
ROUTE_BYTES = 9453
"""The most one route takes in a published set, as hookstream_api.relay says."""
WIDEST = "\U0001f600"
"""A character that passes every text pattern and takes the most JSON bytes: 4."""


def widest_route() -> Route:
    """A webhook with every field of its route at the API's maximum, in the widest characters."""
    return Route(
        id=str(uuid.uuid4()),
        event_types=tuple(
            f"{i:02d}".ljust(MAX_EVENT_TYPE, "x") for i in range(MAX_EVENT_TYPES)
        ),  # names are [A-Za-z0-9._-]: one byte each
        level="tenant",
        owner_id=WIDEST * MAX_OWNER_ID,
        enabled=False,
        filter=WIDEST * MAX_FILTER,
        cloud_event=False,
    )


def test_one_route_at_most_route_bytes() -> None:
    one = len(TenantRoutes("t", (widest_route(),)).dumps())
    two = len(TenantRoutes("t", (widest_route(), widest_route())).dumps())
    assert two - one == ROUTE_BYTES  # one more route, with its comma


def test_worst_case_of_the_default_limit_fits_in_a_record() -> None:
    limit = ApiSettings.model_fields["max_webhooks_per_tenant"].default
    tenant = "t" * ApiSettings.model_fields["max_header_bytes"].default  # bounded by the headers
    routes = TenantRoutes(tenant, tuple(widest_route() for _ in range(limit)))
    size = len(routes.dumps()) + len(tenant.encode()) + RECORD_OVERHEAD
    assert limit == 100
    assert size <= KAFKA_MAX_REQUEST, f"{size} bytes"
    assert limit * ROUTE_BYTES == 945_300  # as relay's docstring says


@given(st.text(max_size=40))
def test_text_the_patterns_allow_takes_at_most_four_json_bytes_a_character(text: str) -> None:
    for pattern in (SINGLE_LINE, MULTI_LINE):
        if re.fullmatch(pattern, text):
            assert len(orjson.dumps(text)) - 2 <= 4 * len(text)
