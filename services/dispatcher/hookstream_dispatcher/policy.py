"""What an attempt's result means and when to try again. Pure logic, no I/O.

2xx is success. 410 Gone disables the webhook at once. 429 and 503 retry no sooner than their
Retry-After, rounded up to a tier of the schedule. Timeouts, connection and DNS errors and other
5xx retry on the schedule. Redirects (not followed), other 4xx and refused addresses fail for good.
"""

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from hookstream_common.delivery import Attempt

_UNITS = {"s": 1, "m": 60, "h": 3600}


class Verdict(StrEnum):
    """The outcome class of one attempt; also the label of the attempts metric."""

    SUCCESS = "success"
    RETRY = "retry"
    FAIL = "fail"
    GONE = "gone"


def judge(attempt: Attempt) -> Verdict:
    """Classify an attempt by the rules above."""
    if attempt.succeeded:
        return Verdict.SUCCESS
    code = attempt.status_code
    if code is None:
        return Verdict.FAIL if attempt.error_class in ("blocked", "config") else Verdict.RETRY
    if code == 410:
        return Verdict.GONE
    if code in (429, 503) or code >= 500:
        return Verdict.RETRY
    return Verdict.FAIL


def retry_after_seconds(attempt: Attempt, now: datetime) -> float | None:
    """Retry-After of a 429 or 503, in seconds (delta or HTTP date), or None."""
    value = attempt.header("Retry-After")
    if attempt.status_code not in (429, 503) or not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Tier:
    """One delay of the schedule and the name of its topic."""

    name: str
    seconds: float


@dataclass(frozen=True)
class Retry:
    """Try again from `tier`'s topic once `due_at` has come."""

    tier: Tier
    due_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """The schedule of retry delays, each with ± jitter."""

    tiers: tuple[Tier, ...]
    jitter: float = 0.2

    @classmethod
    def parse(cls, schedule: str, jitter: float = 0.2) -> "RetryPolicy":
        """`5s,30s,2m,...`: one tier per entry, in order, each longer than the last."""
        tiers = []
        for item in (part.strip() for part in schedule.split(",")):
            match = re.fullmatch(r"(\d+)([smh])", item)
            if not match:
                raise ValueError(f"retry schedule: {item!r} is not like 5s, 2m or 1h")
            tiers.append(Tier(item, int(match[1]) * _UNITS[match[2]]))
        if [t.seconds for t in tiers] != sorted({t.seconds for t in tiers}):
            raise ValueError("retry schedule: delays must grow from one entry to the next")
        return cls(tuple(tiers), jitter)

    @property
    def max_attempts(self) -> int:
        """The first attempt and one per tier."""
        return len(self.tiers) + 1

    def next(
        self,
        attempt: int,
        now: datetime,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> Retry | None:
        """When attempt `attempt + 1` is due, or None when the schedule is exhausted.

        Retry-After moves the retry to the first tier at least that long (the last tier at
        most), and its jitter only lengthens the wait, so the receiver's wish is kept.
        """
        if attempt >= self.max_attempts:
            return None
        rng = rng or random.Random()
        tier = self.tiers[attempt - 1]
        spread = rng.uniform(-self.jitter, self.jitter)
        if retry_after is not None and retry_after > tier.seconds:
            tier = next((t for t in self.tiers if t.seconds >= retry_after), self.tiers[-1])
            spread = abs(spread)
        return Retry(tier, now + timedelta(seconds=tier.seconds * (1 + spread)))


def utcnow() -> datetime:
    """The clock, in one place."""
    return datetime.now(UTC)
