"""Shared per-request dependencies: settings, repositories, the delivery client."""

from datetime import timedelta
from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.errors import ApiError
from hookstream_api.repository import DeliveryRepository, WebhookRepository
from hookstream_api.settings import ApiSettings
from hookstream_api.write_rate import WriteRate, take
from hookstream_common.resilience import Readiness


def app_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    return request.app.state.settings


def _connected(request: Request) -> None:
    """Until start-up has reached Postgres and migrated it, data requests answer 503."""
    if not request.app.state.connected:
        raise ApiError(
            503,
            "HOOKSTREAM-503",
            "The service is starting and waits for its database; try again in a few seconds.",
        )


def webhook_repository(request: Request) -> WebhookRepository:
    """Repository over the app's pool and secret box."""
    _connected(request)
    return WebhookRepository(request.app.state.pool, request.app.state.box)


def delivery_repository(request: Request) -> DeliveryRepository:
    """Repository over the app's pool."""
    _connected(request)
    settings = request.app.state.settings
    return DeliveryRepository(request.app.state.pool, timedelta(days=settings.retention_days))


async def write_allowed(request: Request, principal: CurrentPrincipal) -> None:
    """Take one write from the tenant's bucket, or answer 429 with when to try again."""
    _connected(request)
    settings: ApiSettings = request.app.state.settings
    rate = WriteRate(settings.write_rate_per_second, settings.write_burst)
    wait = await take(request.app.state.pool, principal.tenant_id, rate)
    if wait is not None:
        raise ApiError(
            429,
            "HOOKSTREAM-429",
            f"The tenant writes webhooks faster than {rate.per_second:g} a second (bursts of"
            f" {rate.burst}); try again in {wait} s.",
            "Too many requests",
            headers={"Retry-After": str(wait)},
        )


def delivery_client(request: Request) -> aiohttp.ClientSession:
    """The SSRF-safe client the synchronous resend sends with."""
    return request.app.state.http


def service_readiness(request: Request) -> Readiness:
    """The probes of Postgres and Kafka that `/readyz` and `/metrics` report."""
    return request.app.state.readiness


Settings = Annotated[ApiSettings, Depends(app_settings)]
Webhooks = Annotated[WebhookRepository, Depends(webhook_repository)]
Deliveries = Annotated[DeliveryRepository, Depends(delivery_repository)]
WriteAllowed = Depends(write_allowed)
"""Add to `dependencies=` of every route that writes a webhook."""
DeliveryClient = Annotated[aiohttp.ClientSession, Depends(delivery_client)]
ServiceReadiness = Annotated[Readiness, Depends(service_readiness)]
