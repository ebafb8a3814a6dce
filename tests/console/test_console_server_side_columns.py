"""The API behind the console's columns: sorts beyond Qlik's page with cursors like the rest."""

from typing import Any

import httpx
import pytest
from console_support import CREATED, DELETED, USER_DELETED, V1, create_webhook

from support import bearer, new_tenant


@pytest.mark.parametrize("sort", ["eventTypes", "enabled", "level", "ownerId"])
@pytest.mark.parametrize("direction", ["", "-"])
async def test_new_sorts_page_through_every_webhook_once(
    api: httpx.AsyncClient, token: Any, sort: str, direction: str
) -> None:
    auth = token(new_tenant(), "admin", admin=True)
    types = [[CREATED], [DELETED], [CREATED, DELETED], [USER_DELETED], [CREATED]]
    for number, event_types in enumerate(types):
        await create_webhook(
            api,
            auth,
            name=f"w{number}",
            eventTypes=event_types,
            enabled=number % 2 == 0,
            level="tenant" if number % 3 else "user",
            ownerId=f"owner-{number % 2}",
        )
    whole = await api.get(V1, params={"sort": f"{direction}{sort}"}, headers=bearer(auth))
    assert whole.status_code == 200, whole.text
    expected = [w["name"] for w in whole.json()["data"]]
    seen: list[str] = []
    url: str | None = f"{V1}?limit=2&sort={direction}{sort}"
    while url:
        page = (await api.get(url, headers=bearer(auth))).json()
        seen += [w["name"] for w in page["data"]]
        url = page["links"].get("next", {}).get("href")
    assert seen == expected and sorted(seen) == [f"w{n}" for n in range(5)]


async def test_updated_time_range_filter(api: httpx.AsyncClient, token: Any) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth)
    at = webhook["updatedAt"]
    inside = {"updatedSince": at, "updatedUntil": "2999-01-01T00:00:00Z"}
    outside = {"updatedUntil": at}
    listed = await api.get(V1, params=inside, headers=bearer(auth))
    assert [w["id"] for w in listed.json()["data"]] == [webhook["id"]]
    listed = await api.get(V1, params=outside, headers=bearer(auth))
    assert listed.json()["data"] == []
    refused = await api.get(V1, params={"updatedSince": "yesterday"}, headers=bearer(auth))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["detail"].startswith("updatedSince")
