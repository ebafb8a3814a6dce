"""A typed client for the Hookstream (Qlik) webhooks API, sync and async, on httpx.

    from hookstream_client import Client, WebhookInput

    with Client("http://127.0.0.1:8000", token=TOKEN) as client:
        hook = client.create_webhook(
            WebhookInput(name="n", url="https://hooks.example.com/q", event_types=[...])
        )
        for delivery in client.iter_deliveries(hook.id, status="fail"):
            client.resend_delivery(hook.id, delivery.id)

Errors of the API raise `ApiError`, carrying its `status`, `code` and `detail`.
"""

from hookstream_client.client import AsyncClient, Client
from hookstream_client.errors import ApiError
from hookstream_client.models import (
    AuditEvent,
    ClientCertificate,
    ClientCertificateInfo,
    Delivery,
    DeliveryRequest,
    DeliveryResponse,
    EventType,
    Links,
    Page,
    PatchOperation,
    RateLimit,
    Recovery,
    Webhook,
    WebhookInput,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuditEvent",
    "Client",
    "ClientCertificate",
    "ClientCertificateInfo",
    "Delivery",
    "DeliveryRequest",
    "DeliveryResponse",
    "EventType",
    "Links",
    "Page",
    "PatchOperation",
    "RateLimit",
    "Recovery",
    "Webhook",
    "WebhookInput",
]
