"""Every stage parks a dead letter of one shape: the value, why, where from and which stage."""

from hookstream_common.parking import SAMPLE_BYTES, dead_letter


def test_a_dead_letter_says_why_where_from_and_which_stage() -> None:
    value, headers = dead_letter(b"{}", "hs.events/3/42", "events", "not JSON")
    assert value == b"{}"
    assert dict(headers) == {
        "hookstream-dlq-reason": b"not JSON",
        "hookstream-source": b"hs.events/3/42",
        "hookstream-stage": b"events",
    }


def test_a_large_value_is_cut_and_its_length_kept() -> None:
    value, headers = dead_letter(b"x" * (SAMPLE_BYTES + 5), "history/d/1", "history", "r" * 2000)
    assert len(value) == SAMPLE_BYTES
    assert dict(headers)["hookstream-truncated"] == str(SAMPLE_BYTES + 5).encode()
    assert len(dict(headers)["hookstream-dlq-reason"]) == 1024


def test_a_tombstone_parks_as_an_empty_value() -> None:
    value, _ = dead_letter(None, "hs.events/0/1", "events", "no value")
    assert value == b""
