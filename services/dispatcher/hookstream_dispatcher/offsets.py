"""Which offset of a webhook's topic may be committed.

Jobs of one webhook finish out of order when several run at once (decision 4); only the
contiguous finished prefix is committed.
"""

from collections import deque


class OffsetTracker:
    """Offsets begin in order and finish in any order; `committable` never passes a gap."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._finished: set[int] = set()
        self.committable: int | None = None
        """The offset after the last of an unbroken run of finished offsets."""

    def __len__(self) -> int:
        """Offsets begun and not yet committable."""
        return len(self._pending)

    def begin(self, offset: int) -> None:
        """An offset was taken for processing (offsets must begin in increasing order)."""
        self._pending.append(offset)

    def finish(self, offset: int) -> None:
        """An offset's work is done (stored); advance past every finished head."""
        self._finished.add(offset)
        while self._pending and self._pending[0] in self._finished:
            head = self._pending.popleft()
            self._finished.discard(head)
            self.committable = head + 1
