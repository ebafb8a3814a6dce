"""Entry point of `hookstream-janitor`: a loop, or one pass with `--once` (for a CronJob).

Two janitors at once do no harm: a pass runs only while holding a Postgres advisory lock, and
the other skips its turn.
"""

import argparse
import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
import uvloop
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.db import DAYS_AHEAD, advisory_lock_key, migrate
from hookstream_common.kafka import client_options
from hookstream_common.kafka_failover import with_failover
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server
from hookstream_common.resilience import TRANSIENT, Readiness, kafka_check, postgres_check
from hookstream_janitor.certificates import notice_expiring_certificates
from hookstream_janitor.housekeeping import (
    PassReport,
    delete_drained_topics,
    prune_audit,
    purge_records,
    rotate_partitions,
    trim_outbox,
)
from hookstream_janitor.metrics import INTERVAL, PASS_SECONDS, PASSES, record_pass
from hookstream_janitor.settings import JanitorSettings

log = structlog.get_logger(__name__)

_LOCK = advisory_lock_key("hookstream.janitor")


async def one_pass(settings: JanitorSettings, now: datetime) -> PassReport | None:
    """Do every chore once; None when another janitor holds the lock."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            log.info("another janitor is working; skipping this pass")
            PASSES.labels("skipped").inc()
            return None
        report = PassReport()
        retention = timedelta(days=settings.retention_days)
        await rotate_partitions(conn, now, retention, DAYS_AHEAD, report)
        connection = client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        admin = with_failover(AIOKafkaAdminClient(**connection))
        await admin.start()
        try:
            await delete_drained_topics(
                conn,
                admin,
                connection,
                settings.topics,
                settings.dispatcher_group_id,
                report,
            )
        finally:
            await admin.close()
        await trim_outbox(conn, now, report)
        await purge_records(conn, now, retention, report)
        (
            report.certificates_noticed,
            report.certificates_expiring,
        ) = await notice_expiring_certificates(
            conn, now, timedelta(days=settings.client_certificate_notice_days)
        )
        await prune_audit(conn, now, timedelta(days=settings.audit_retention_days), report)
    finally:
        await conn.close()  # also releases the lock
    record_pass(report)
    log.info(
        "janitor pass done",
        partitions_created=report.partitions_created,
        partitions_dropped=report.partitions_dropped,
        topics_deleted=report.topics_deleted,
        outbox_trimmed=report.outbox_trimmed,
        recoveries_purged=report.recoveries_purged,
        rate_buckets_purged=report.rate_buckets_purged,
        certificates_noticed=report.certificates_noticed,
        audit_events_pruned=report.audit_events_pruned,
    )
    return report


async def run(settings: JanitorSettings, once: bool) -> None:
    """Run passes until stopped (or just one). A failed pass is logged and tried again at the
    next interval: an outage of Postgres or Kafka never ends the janitor."""
    if once:
        await migrate(settings.database_url)
        await one_pass(settings, datetime.now(UTC))
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    readiness = Readiness(
        {
            "postgres": postgres_check(settings.database_url),
            "kafka": kafka_check(settings.kafka_bootstrap_servers, settings.kafka_security),
        },
        lambda: True,
    )
    ops = await start_ops_server(settings.janitor_host, settings.janitor_port, readiness)
    readiness.start()
    INTERVAL.set(settings.janitor_interval_seconds)
    for result in ("success", "failed", "skipped"):
        PASSES.labels(result)
    try:
        migrated = False
        while not stop.is_set():
            try:
                with PASS_SECONDS.time():
                    if not migrated:
                        await migrate(settings.database_url)
                        migrated = True
                    await one_pass(settings, datetime.now(UTC))
            except TRANSIENT as exc:
                PASSES.labels("failed").inc()
                log.warning(
                    "janitor pass failed: a dependency is unavailable; will try again",
                    error_class=type(exc).__name__,
                    error=str(exc),
                )
            except Exception:
                PASSES.labels("failed").inc()
                log.exception("janitor pass failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.janitor_interval_seconds)
    finally:
        await readiness.stop()
        await ops.cleanup()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="hookstream-janitor")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args()
    settings = JanitorSettings()
    configure_logging("janitor", settings.log_level, settings.log_format)
    uvloop.run(run(settings, args.once))


if __name__ == "__main__":
    main()
