"""Shared per-request dependencies: settings, repositories, the delivery client."""

from datetime import timedelta
from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from hookstream_api.repository import DeliveryRepository, WebhookRepository
from hookstream_api.settings import ApiSettings


def app_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    return request.app.state.settings


def webhook_repository(request: Request) -> WebhookRepository:
    """Repository over the app's pool and secret box."""
    return WebhookRepository(request.app.state.pool, request.app.state.box)


def delivery_repository(request: Request) -> DeliveryRepository:
    """Repository over the app's pool."""
    settings = request.app.state.settings
    return DeliveryRepository(request.app.state.pool, timedelta(days=settings.retention_days))


def delivery_client(request: Request) -> aiohttp.ClientSession:
    """The SSRF-safe client the synchronous resend sends with."""
    return request.app.state.http


Settings = Annotated[ApiSettings, Depends(app_settings)]
Webhooks = Annotated[WebhookRepository, Depends(webhook_repository)]
Deliveries = Annotated[DeliveryRepository, Depends(delivery_repository)]
DeliveryClient = Annotated[aiohttp.ClientSession, Depends(delivery_client)]
