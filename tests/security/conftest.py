"""The security suite runs its stack tests on tests/e2e's stack, imported whole; its pure tests
need none of it (fixtures start only when a test asks for them)."""

from e2e.conftest import *  # noqa: F403  (the stack's fixtures)
