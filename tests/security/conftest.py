"""Fixtures of the security suite: the e2e stack (Kafka, Postgres, the four services, an HTTPS
receiver), imported whole, as the console's and the poison suite's are."""

from e2e.conftest import *  # noqa: F403  (the stack's fixtures)
