"""KRaft cluster ids the local brokers are formatted with (hookstream_dev.infra)."""

import base64

from hookstream_dev.infra import _cluster_id


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """The storage tool read `-t -gIG…` as a missing value and an option: a CI run lost its
    secured broker to it. Kafka's own ids avoid a leading dash; so do ours."""
    ids = [_cluster_id() for _ in range(5000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
