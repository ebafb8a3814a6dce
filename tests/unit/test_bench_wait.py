"""The bench's long waits: polled at their own pace, showing progress, telling it on timeout."""

import pytest

from hookstream_dev import bench_stack
from hookstream_dev.bench_stack import wait_for


async def test_a_wait_polls_until_true_at_its_interval() -> None:
    polls = []

    async def third_time() -> bool:
        polls.append(None)
        return len(polls) == 3

    waited = await wait_for(third_time, 5, "three polls", interval=0.05)
    assert len(polls) == 3
    assert 0.1 <= waited < 1


async def test_a_long_wait_shows_its_progress_and_tells_it_on_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_stack, "_PROGRESS_EVERY", 0.05)
    done = 0

    async def never() -> bool:
        nonlocal done
        done += 1
        return False

    with pytest.raises(RuntimeError, match=r"waiting for the topics \(\d+ polls done\)"):
        await wait_for(
            never, 0.3, "the topics", interval=0.02, progress=lambda: f"{done} polls done"
        )
    assert "polls done" in capsys.readouterr().err
