import orjson

from hookstream_common.events import Event
from hookstream_common.routing import Route, TenantRoutes
from hookstream_dev.events import sample_event


def _event(event_type: str = "com.qlik.v1.app.created", user: str = "u-1") -> Event:
    return Event.parse(orjson.dumps(sample_event(event_type, "t-1", user)))


def _route(**overrides: object) -> Route:
    fields: dict[str, object] = {
        "id": "w-1",
        "event_types": ("com.qlik.v1.app.created",),
        "level": "tenant",
        "owner_id": "admin",
        "enabled": True,
    }
    fields.update(overrides)
    return Route(**fields)  # type: ignore[arg-type]


def test_matches_on_event_type_and_enabled() -> None:
    assert _route().accepts(_event())
    assert not _route(enabled=False).accepts(_event())
    assert not _route().accepts(_event("com.qlik.v1.app.deleted"))


def test_user_level_hears_only_about_its_owner() -> None:
    assert _route(level="user", owner_id="u-1").accepts(_event(user="u-1"))
    assert not _route(level="user", owner_id="u-2").accepts(_event(user="u-1"))


def test_tenant_routes_round_trip() -> None:
    routes = TenantRoutes("t-1", (_route(), _route(id="w-2", enabled=False)))
    again = TenantRoutes.loads(routes.dumps())
    assert again == routes
    assert [r.id for r in again.matching(_event())] == ["w-1"]
    assert b"secret" not in routes.dumps()


def test_filter_narrows_what_a_webhook_receives() -> None:
    in_space = Event.parse(
        orjson.dumps(
            {
                **sample_event("com.qlik.v1.app.created", "t-1"),
                "extensions": {"tenantId": "t-1", "spaceId": "s-1"},
            }
        )
    )
    route = _route(filter='spaceId eq "s-1" or spaceId eq "s-2"')
    assert route.accepts(in_space)
    assert not route.accepts(_event())
    assert _route(filter='spaceId ne "s-1"').accepts(_event())
