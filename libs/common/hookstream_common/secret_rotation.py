"""Secret rotation with a grace window (a Hookstream extension of the Qlik webhook).

When a webhook's secret changes, the secret it replaces stays valid for the webhook's
`secretRotationGraceSeconds`: deliveries carry a `webhook-signature` with both, so a receiver
can switch to the new secret at any moment in the window without rejecting a delivery.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_GRACE_SECONDS = 86400
MAX_GRACE_SECONDS = 30 * 86400


@dataclass(frozen=True)
class PreviousSecret:
    """The secret a rotation replaced, and when it stops signing. Plain text: never log it."""

    secret: str = field(repr=False)
    expires_at: datetime

    def valid_at(self, now: datetime) -> bool:
        """Whether deliveries at `now` are still signed with it too."""
        return now < self.expires_at


def after_change(
    current: str | None,
    new: str | None,
    kept: PreviousSecret | None,
    grace_seconds: int,
    now: datetime,
) -> PreviousSecret | None:
    """The previous secret a webhook keeps once its secret goes from `current` to `new`.

    - A new secret replacing another starts a window of `grace_seconds` for the one replaced
      (a second rotation within it replaces the previous secret: only one is ever kept).
    - An unchanged secret keeps a running window, shortened if the grace now is shorter, so
      setting the grace to 0 revokes the old secret at once (say, after it leaked).
    - No secret (a PUT without one, or removing it) ends any window, as it ends signing.
    """
    if new is None or grace_seconds <= 0:
        return None
    grace = timedelta(seconds=grace_seconds)
    if current is not None and new != current:
        return PreviousSecret(current, now + grace)
    if kept is None or not kept.valid_at(now) or kept.secret == new:
        return None
    return PreviousSecret(kept.secret, min(kept.expires_at, now + grace))
