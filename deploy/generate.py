"""Generate the Grafana dashboard and the PrometheusRule from their single sources.

    .venv/bin/python deploy/generate.py        # rewrites deploy/grafana/hookstream.json and
                                                # deploy/k8s/base/prometheusrule.yaml

The dashboard is code (grafana-foundation-sdk), so every query is reviewed here and the JSON is
never edited by hand; the PrometheusRule wraps deploy/prometheus/alerts.yml for clusters with
the prometheus-operator. tests/deploy/test_generated.py fails when either file is stale.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DEPLOY = Path(__file__).resolve().parent
DASHBOARD_JSON = DEPLOY / "grafana" / "hookstream.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = DEPLOY / "k8s" / "base" / "prometheusrule.yaml"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
METRIC = re.compile(r"\b(hookstream_[a-z_]+|up)\b(\{)?")
NAMESPACE = 'namespace=~"$namespace"'
RELEASE = "kube-prometheus-stack"
"""The `release` label kube-prometheus-stack selects rules and ServiceMonitors by (its Helm
release's name); an overlay patches it to another release."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and how its series are named."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel: a time series, or a single stat when `single` is set."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    single: bool = False
    key: bool = False
    """A key panel returns data whenever deliveries flow (checked against a real Prometheus)."""


def q(expr: str, legend: str = "") -> tuple[Query, ...]:
    return (Query(expr, legend),)


ROWS: dict[str, list[Panel]] = {
    "Overview": [
        Panel(
            "Deliveries/s",
            "Successful delivery attempts per second, all webhooks.",
            q(f'sum(rate(hookstream_dispatcher_attempts_total{{outcome="success"}}[{RATE}]))'),
            unit="reqps",
            single=True,
            key=True,
        ),
        Panel(
            "Success rate",
            "Share of attempts that succeeded (retries and receivers' errors count as failures).",
            q(
                f'sum(rate(hookstream_dispatcher_attempts_total{{outcome="success"}}[{RATE}]))'
                f" / sum(rate(hookstream_dispatcher_attempts_total[{RATE}]))"
            ),
            unit="percentunit",
            single=True,
            key=True,
        ),
        Panel(
            "End-to-end p99",
            "From the event's time to the receiver's answer, first attempts. Objective: 5 s.",
            q(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(hookstream_dispatcher_end_to_end_seconds_bucket[{RATE}])))"
            ),
            unit="s",
            single=True,
            key=True,
        ),
        Panel(
            "Services up",
            "Scrape targets that answer, by service.",
            q('sum by (job) (up{job=~"hookstream-.*"})', "{{job}}"),
            key=True,
        ),
        Panel(
            "Dependencies",
            "1 when every instance of a service reaches the dependency (its readiness probe).",
            q("min by (job, dependency) (hookstream_dependency_up)", "{{job}} → {{dependency}}"),
            key=True,
        ),
    ],
    "Lag and backlog": [
        Panel(
            "Dispatcher lag by shard",
            "Jobs not yet committed in each shard's delivery topics (what the autoscaler uses).",
            q("sum by (shard) (hookstream_dispatcher_shard_lag)", "shard {{shard}}"),
        ),
        Panel(
            "Matcher consumer lag",
            "Events on the events topic not yet read, by partition.",
            q("sum by (partition) (hookstream_matcher_consumer_lag)", "partition {{partition}}"),
            key=True,
        ),
        Panel(
            "Matcher events and jobs",
            "Events by outcome, and the delivery jobs they produced.",
            (
                Query(
                    f"sum by (outcome) (rate(hookstream_matcher_events_total[{RATE}]))",
                    "events {{outcome}}",
                ),
                Query(f"sum(rate(hookstream_matcher_jobs_total[{RATE}]))", "jobs"),
            ),
            unit="ops",
            key=True,
        ),
        Panel(
            "Matcher held jobs",
            "Jobs held until the broker serves their webhook's new topic, by instance; their"
            " events stay uncommitted. Above zero for minutes: HookstreamMatcherJobsHeld.",
            q("sum by (instance) (hookstream_matcher_held_jobs)", "{{instance}}"),
            key=True,
        ),
        Panel(
            "Matcher batches in flight",
            "Batches routed and waiting for the broker's acknowledgements, by instance; at"
            " HOOKSTREAM_MATCHER_PIPELINE_DEPTH (4) all the time, the broker sets the pace.",
            q("sum by (instance) (hookstream_matcher_batches_in_flight)", "{{instance}}"),
            key=True,
        ),
        Panel(
            "In flight and history queue",
            "Requests waiting for a receiver; outcomes waiting to be stored.",
            (
                Query("sum(hookstream_dispatcher_in_flight)", "in flight"),
                Query("sum(hookstream_dispatcher_history_queue)", "history queue"),
            ),
        ),
        Panel(
            "Outbox backlog",
            "Webhook changes not yet published to Kafka, and the age of the oldest.",
            (
                Query("max(hookstream_outbox_backlog)", "rows"),
                Query("max(hookstream_outbox_oldest_age_seconds)", "oldest (s)"),
            ),
            key=True,
        ),
    ],
    "Failures and retries": [
        Panel(
            "Attempts by outcome",
            "success, retry (scheduled again), fail (for good), gone (410: webhook disabled).",
            q(
                f"sum by (outcome) (rate(hookstream_dispatcher_attempts_total[{RATE}]))",
                "{{outcome}}",
            ),
            unit="reqps",
            key=True,
        ),
        Panel(
            "Retry depth by tier",
            "Retries waiting in each delay tier.",
            q("sum by (tier) (hookstream_dispatcher_retry_depth)", "{{tier}}"),
        ),
        Panel(
            "Dead letters",
            "Records parked on a dead-letter topic per second, by stage.",
            q(
                f"sum by (job, stage) (rate(hookstream_dead_letters_total[{RATE}]))",
                "{{job}} {{stage}}",
            ),
            unit="ops",
        ),
        Panel(
            "Webhooks disabled (1 h)",
            "Webhooks the dispatcher disabled in the last hour, by reason code.",
            q(
                "sum by (code) (increase(hookstream_dispatcher_webhooks_disabled_total[1h]))",
                "{{code}}",
            ),
        ),
        Panel(
            "History writes failing",
            "Failed tries to store outcomes, by reason; and the matcher's failed batches.",
            (
                Query(
                    "sum by (reason) "
                    f"(rate(hookstream_dispatcher_history_write_failures_total[{RATE}]))",
                    "history {{reason}}",
                ),
                Query(
                    f"sum(rate(hookstream_matcher_batch_failures_total[{RATE}]))",
                    "matcher batches",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Attempt duration",
            "How long receivers take to answer: p50 and p99.",
            (
                Query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(hookstream_dispatcher_attempt_seconds_bucket[{RATE}])))",
                    "p50",
                ),
                Query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(hookstream_dispatcher_attempt_seconds_bucket[{RATE}])))",
                    "p99",
                ),
            ),
            unit="s",
        ),
    ],
    "API": [
        Panel(
            "Requests by status",
            "API requests per second by status code (operations endpoints excluded).",
            q(f"sum by (status) (rate(hookstream_api_requests_total[{RATE}]))", "{{status}}"),
            unit="reqps",
            key=True,
        ),
        Panel(
            "Server errors",
            "Share of API requests answered with a 5xx.",
            q(
                f'sum(rate(hookstream_api_requests_total{{status=~"5.."}}[{RATE}]))'
                f" / sum(rate(hookstream_api_requests_total[{RATE}]))"
            ),
            unit="percentunit",
        ),
        Panel(
            "Request p99 by route",
            "Time to answer, by route template.",
            q(
                "histogram_quantile(0.99, sum by (le, route) "
                f"(rate(hookstream_api_request_seconds_bucket[{RATE}])))",
                "{{route}}",
            ),
            unit="s",
        ),
        Panel(
            "Outbox rows failed",
            "Outbox rows the relay can never publish, per second, by error.",
            q(f"sum by (error) (rate(hookstream_outbox_failed_rows_total[{RATE}]))", "{{error}}"),
            unit="ops",
        ),
    ],
    "Janitor": [
        Panel(
            "Since last success",
            "Time since the janitor loop last finished a pass.",
            q("time() - max(hookstream_janitor_last_success_timestamp_seconds)"),
            unit="s",
            single=True,
            key=True,
        ),
        Panel(
            "Passes (1 h)",
            "Passes in the last hour, by result.",
            q("sum by (result) (increase(hookstream_janitor_passes_total[1h]))", "{{result}}"),
        ),
        Panel(
            "Partitions and topics (1 h)",
            "History partitions created and dropped, and delivery topics reaped, last hour.",
            (
                Query("sum(increase(hookstream_janitor_partitions_created_total[1h]))", "created"),
                Query("sum(increase(hookstream_janitor_partitions_dropped_total[1h]))", "dropped"),
                Query(
                    "sum(increase(hookstream_janitor_topics_deleted_total[1h]))", "topics reaped"
                ),
            ),
        ),
        Panel(
            "Pass duration p99",
            "How long a pass takes.",
            q(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(hookstream_janitor_pass_seconds_bucket[{RATE}])))"
            ),
            unit="s",
        ),
    ],
}


def scoped(expr: str) -> str:
    """`expr` with every metric selector limited to the dashboard's namespace variable (All
    matches series without the label too: a Prometheus outside Kubernetes)."""
    return METRIC.sub(lambda m: f"{m[1]}{{{NAMESPACE}," if m[2] else f"{m[1]}{{{NAMESPACE}}}", expr)


def _panel(panel: Panel) -> stat.Panel | timeseries.Panel:
    builder = stat.Panel() if panel.single else timeseries.Panel()
    builder.title(panel.title).description(panel.description).unit(panel.unit)
    builder.datasource(DATASOURCE).height(7).span(24 // 5 if panel.single else 8)
    for ref_id, query in zip("ABCDEFGH", panel.queries, strict=False):
        target = prometheus.Dataquery().expr(scoped(query.expr)).ref_id(ref_id)
        if query.legend:
            target.legend_format(query.legend)
        builder.with_target(target)
    return builder


def build_dashboard() -> dict[str, object]:
    """The dashboard as Grafana's JSON model."""
    board = (
        dashboard.Dashboard("Hookstream")
        .uid("hookstream")
        .tags(["hookstream"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query('label_values(up{job=~"hookstream-.*"}, namespace)')
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
    )
    for title, panels in ROWS.items():
        board.with_row(dashboard.Row(title))
        for panel in panels:
            board.with_panel(_panel(panel))
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


def dashboard_text() -> str:
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


class _BlockStrings(yaml.SafeDumper):
    """Writes multi-line strings (the PromQL expressions) as `|` blocks, as in alerts.yml."""


_BlockStrings.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def prometheus_rule_text() -> str:
    """alerts.yml as a prometheus-operator PrometheusRule."""
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hookstream", "labels": {"release": RELEASE}},
        "spec": yaml.safe_load(ALERTS.read_text()),
    }
    header = "# Generated by deploy/generate.py from deploy/prometheus/alerts.yml: do not edit.\n"
    return header + yaml.dump(rule, Dumper=_BlockStrings, sort_keys=False, width=100)


def main() -> None:
    DASHBOARD_JSON.write_text(dashboard_text())
    PROMETHEUS_RULE.write_text(prometheus_rule_text())


if __name__ == "__main__":
    main()
