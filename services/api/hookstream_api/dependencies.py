"""Shared per-request dependencies: the pool, the secret box and the repositories."""

from typing import Annotated

from fastapi import Depends, Request

from hookstream_api.repository import DeliveryRepository, WebhookRepository


def webhook_repository(request: Request) -> WebhookRepository:
    """Repository over the app's pool and secret box."""
    return WebhookRepository(request.app.state.pool, request.app.state.box)


def delivery_repository(request: Request) -> DeliveryRepository:
    """Repository over the app's pool."""
    return DeliveryRepository(request.app.state.pool)


Webhooks = Annotated[WebhookRepository, Depends(webhook_repository)]
Deliveries = Annotated[DeliveryRepository, Depends(delivery_repository)]
