"""One router per API resource, and the route options they share.

Every route a tenant can repeat is rate limited (decision 12), and its 429 is documented; the
options below say so once, spread into the route's decorator (`@router.put(path, **WRITE)`).
"""

from typing import Any

from fastapi import Response

from hookstream_api.dependencies import ActionAllowed, SendingSlot, WriteAllowed
from hookstream_api.errors import RATE_LIMITED
from hookstream_api.schemas import Delivery

WRITE: dict[str, Any] = {"dependencies": [WriteAllowed], "responses": RATE_LIMITED}
"""A route that writes a webhook."""
ACTION: dict[str, Any] = {"dependencies": [ActionAllowed], "responses": RATE_LIMITED}
"""A route that queues deliveries on request."""
SEND_NOW: dict[str, Any] = {
    "dependencies": [ActionAllowed, SendingSlot],
    "responses": RATE_LIMITED,
    "status_code": 201,
    "response_model": Delivery,
    "response_model_exclude_none": True,
}
"""A route that sends one request while its caller waits and answers the stored delivery."""
NO_CONTENT: dict[str, Any] = {"status_code": 204, "response_class": Response}
"""A route that answers 204 with no body."""
