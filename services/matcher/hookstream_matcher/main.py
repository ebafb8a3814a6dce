"""Entry point of `hookstream-matcher`: a faust worker with the project's JSON logging."""

import logging

import faust
from hookstream_common.logging import configure_logging

from hookstream_matcher.app import create_app
from hookstream_matcher.settings import MatcherSettings


class _Worker(faust.Worker):
    """A faust worker that logs like every other service."""

    settings: MatcherSettings

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging("matcher", self.settings.log_level, self.settings.log_format)


def main() -> None:
    """Run the matcher until SIGTERM."""
    settings = MatcherSettings()
    worker = _Worker(create_app(settings), loglevel=settings.log_level, redirect_stdouts=False)
    worker.settings = settings
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
