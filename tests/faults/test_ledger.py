"""The fault suite's account must itself be right: it finds every loss, duplicate and forgery."""

import time

import orjson
import pytest

from hookstream_common.jobs import delivery_id_for
from hookstream_common.signing import qlik_signature, standard_webhooks_signature
from hookstream_dev.chaos import Ledger
from hookstream_dev.receiver import RecordedRequest

pytestmark = pytest.mark.faults

SECRET_A, SECRET_B = "a" * 40, "b" * 40


def ledger() -> Ledger:
    account = Ledger()
    account.add_webhook("t1", "wh-a", "/a", SECRET_A)
    account.add_webhook("t1", "wh-b", "/b", SECRET_B)
    return account


def delivery(path: str, webhook: str, secret: str, event: str, at: float = 0.0) -> RecordedRequest:
    """A request as the dispatcher signs it."""
    body = orjson.dumps({"eventId": event, "eventType": "x"})
    delivery_id = delivery_id_for(webhook, event)
    stamp = int(time.time())
    headers = {
        "qlik-signature": qlik_signature(secret, body),
        "webhook-id": delivery_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": standard_webhooks_signature(secret, delivery_id, stamp, body),
    }
    return RecordedRequest("POST", path, headers, body, at or time.time())


def test_counts_lost_and_duplicated_deliveries() -> None:
    account = ledger()
    account.expect("t1", "e1", time.time())
    first = delivery("/a", "wh-a", SECRET_A, "e1")
    account.absorb([first, first])
    assert account.missing() == [delivery_id_for("wh-b", "e1")]
    assert account.duplicates() == 1
    assert account.bad == [] and account.foreign == 0


def test_rejects_bad_signatures_and_wrong_ids() -> None:
    account = ledger()
    account.expect("t1", "e1", time.time())
    forged = delivery("/a", "wh-a", SECRET_B, "e1")
    wrong_id = delivery("/b", "wh-b", SECRET_B, "e1")
    wrong_id.headers["webhook-id"] = delivery_id_for("wh-a", "e1")
    wrong_id.headers["webhook-signature"] = standard_webhooks_signature(
        SECRET_B,
        wrong_id.headers["webhook-id"],
        int(wrong_id.headers["webhook-timestamp"]),
        wrong_id.body,
    )
    account.absorb([forged, wrong_id])
    assert len(account.bad) == 2
    assert sorted(account.missing()) == sorted(delivery_id_for(w, "e1") for w in ("wh-a", "wh-b"))


def test_a_recovered_delivery_counts_only_after_its_recovery() -> None:
    account = ledger()
    account.webhooks_of["t1"] = ["wh-a"]
    failing, now = delivery_id_for("wh-a", "e1"), time.time()
    requests = [delivery("/a", "wh-a", SECRET_A, "e1", at=now - 20)]  # failed attempts
    account.absorb(requests)
    account.recovering[failing] = ("wh-a", "e1", now - 10)
    assert account.missing() == [failing]
    requests.append(delivery("/a", "wh-a", SECRET_A, "e1", at=now))
    account.absorb(requests)
    assert account.missing() == [] and account.duplicates() == 0


def test_arrivals_of_unacknowledged_events_are_foreign_not_owed() -> None:
    account = ledger()
    account.absorb([delivery("/a", "wh-a", SECRET_A, "never-acked")])
    assert account.missing() == [] and account.foreign == 1


def test_judges_the_timestamp_at_arrival_not_at_verification() -> None:
    account = ledger()
    account.expect("t1", "e1", time.time())
    prompt = delivery("/a", "wh-a", SECRET_A, "e1")
    stale = delivery("/b", "wh-b", SECRET_B, "e1", at=time.time() + 600)  # came 10 min after
    account.absorb([prompt, stale])
    assert account.missing() == [delivery_id_for("wh-b", "e1")]
    assert "off its arrival" in account.bad[0]
