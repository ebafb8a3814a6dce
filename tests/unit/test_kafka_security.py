"""The one Kafka connection block: settings, the client options built from them, readiness
reasons, and the topic settings a cluster needs."""

import ssl
from pathlib import Path

import asyncpg
import pytest
import trustme
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from pydantic import ValidationError

from hookstream_common.kafka import client_options, core_topics, delivery_topic
from hookstream_common.resilience import Readiness, error_summary, failure_reason
from hookstream_common.settings import CommonSettings, KafkaSecurity
from hookstream_matcher.main import co_partitioning_problem


class StaticToken(AbstractTokenProvider):
    """A token provider the settings name by import path."""

    async def token(self) -> str:
        return "token"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA and a client certificate in PEM files."""
    ca = trustme.CA()
    client = ca.issue_cert("client@hookstream.test")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "c.pem", "key": tmp_path / "k.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    return files


def test_plaintext_is_the_default_and_adds_only_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_SECURITY_PROTOCOL", raising=False)
    monkeypatch.delenv("KAFKA_REQUEST_TIMEOUT_MS", raising=False)
    assert client_options("k:9092") == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 5000,
    }


def test_the_request_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen broker is left after this long; below a second would cut healthy requests."""
    monkeypatch.setenv("KAFKA_REQUEST_TIMEOUT_MS", "6000")
    assert client_options("k:9092")["request_timeout_ms"] == 6000
    monkeypatch.setenv("KAFKA_REQUEST_TIMEOUT_MS", "500")
    with pytest.raises(ValidationError):
        KafkaSecurity()


def test_sasl_ssl_scram_from_the_environment_with_the_password_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pki: dict[str, Path]
) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "hookstream")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(password))
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(pki["ca"]))
    settings = CommonSettings()
    options = client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "hookstream"
    assert options["sasl_plain_password"] == "s3cret"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert "s3cret" not in repr(settings)


def test_mtls_loads_the_client_certificate_and_hostname_check_can_be_turned_off(
    pki: dict[str, Path],
) -> None:
    security = KafkaSecurity(
        security_protocol="SSL",
        ssl_cafile=pki["ca"],
        ssl_certfile=pki["cert"],
        ssl_keyfile=pki["key"],
        ssl_check_hostname=False,
    )
    context = client_options("k:9093", security)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert not context.check_hostname
    assert "sasl_mechanism" not in client_options("k:9093", security)


def test_oauthbearer_takes_its_token_provider_by_import_path() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=f"{__name__}:StaticToken",
    )
    assert isinstance(client_options("k:9093", security)["sasl_oauth_token_provider"], StaticToken)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "KAFKA_SASL_MECHANISM is required"),
        ({"sasl_mechanism": "PLAIN"}, "needs KAFKA_SECURITY_PROTOCOL"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
            "KAFKA_SASL_OAUTH_TOKEN_PROVIDER",
        ),
        ({"security_protocol": "SSL", "ssl_certfile": __file__}, "go together"),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password_file": "/nonexistent/password",
            },
            "sasl_password_file\n  Path does not point to a file",
        ),
    ],
)
def test_inconsistent_security_is_refused_at_start_naming_the_variable(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity(**fields)


def test_a_refused_password_is_not_in_the_validation_error() -> None:
    with pytest.raises(ValidationError) as error:
        KafkaSecurity(security_protocol="SASL_SSL", sasl_password="s3cret-value")
    assert "s3cret-value" not in str(error.value)


def _wrapped(cause: BaseException) -> KafkaConnectionError:
    """As aiokafka reports a broken connection: its own error, the cause chained."""
    error = KafkaConnectionError("Connection at k:9093 closed")
    error.__cause__ = cause
    return error


def _alert(reason: str) -> ssl.SSLError:
    """An SSL error as the ssl module raises it, with its OpenSSL reason."""
    error = ssl.SSLError(1, reason.lower())
    error.reason = reason
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SaslAuthenticationFailed("Authentication failed during authentication"), "auth"),
        (_wrapped(ssl.SSLCertVerificationError("certificate verify failed")), "tls"),
        (_wrapped(_alert("SSLV3_ALERT_BAD_CERTIFICATE")), "auth"),
        (_wrapped(_alert("UNEXPECTED_EOF_WHILE_READING")), "tls"),
        (asyncpg.InvalidPasswordError("password authentication failed"), "auth"),
        (ConnectionRefusedError(111, "refused"), "unreachable"),
        (TimeoutError(), "unreachable"),
    ],
)
def test_failure_reasons(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason


async def test_readyz_says_why_a_dependency_is_down_and_forgets_it_when_up() -> None:
    state: dict[str, BaseException | None] = {"error": SaslAuthenticationFailed("refused")}

    async def check() -> None:
        if state["error"] is not None:
            raise state["error"]

    readiness = Readiness({"kafka": check}, lambda: True)
    await readiness.probe()
    report = readiness.report()
    assert report["dependencies"] == {"kafka": "down"}
    assert report["reasons"] == {"kafka": "auth"}
    state["error"] = None
    await readiness.probe()
    assert readiness.report()["reasons"] == {} and readiness.ready


def test_created_topics_survive_one_broker_down_and_keep_their_retention() -> None:
    settings = CommonSettings(
        kafka_replication_factor=3, event_partitions=12, dlq_retention_hours=24
    )
    topics = {t.name: t for t in core_topics(settings)}
    events, webhooks = topics["hookstream.events"], topics["hookstream.webhooks"]
    assert events.num_partitions == webhooks.num_partitions == 12
    assert events.replication_factor == 3
    assert events.topic_configs["min.insync.replicas"] == "2"
    assert events.topic_configs["retention.ms"] == str(168 * 3_600_000)
    assert topics["hookstream.events.dlq"].topic_configs["retention.ms"] == str(24 * 3_600_000)
    assert webhooks.topic_configs["cleanup.policy"] == "compact"
    single = delivery_topic(CommonSettings(), "w1")
    assert single.topic_configs["min.insync.replicas"] == "1"


def test_the_matcher_refuses_topics_it_cannot_join() -> None:
    assert co_partitioning_problem({"e": 8, "w": 8}, "e", "w") is None
    assert "e has 8 partitions and w has 4" in (
        co_partitioning_problem({"e": 8, "w": 4}, "e", "w") or ""
    )


def test_a_probe_error_is_summarised_without_its_text() -> None:
    secret = "postgresql://hookstream:s3cret@db/hookstream"
    try:
        try:
            raise ssl.SSLError(1, f"handshake with {secret}")
        except ssl.SSLError as tls:
            tls.reason = "TLSV1_ALERT_UNKNOWN_CA"
            raise ConnectionError(111, "Connection refused") from tls
    except ConnectionError as exc:
        summary = error_summary(exc)
    assert summary == (
        "ConnectionError (111, Connection refused) <- SSLError (TLSV1_ALERT_UNKNOWN_CA)"
    )
    assert "s3cret" not in error_summary(ValueError(secret))
