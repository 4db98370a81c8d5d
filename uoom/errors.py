"""Errors an operator can act on: the CLI prints them as one line and exits non-zero."""


class UoomError(Exception):
    """A known failure with a message that says what to do."""

    exit_code = 1


class PrerequisiteMissing(UoomError):
    """A program the local stack needs is not installed."""


class ServiceUnavailable(UoomError):
    """A service did not answer in time."""


class MigrationError(UoomError):
    """The migrations on disk and in the database disagree, or one failed."""


class UsageError(UoomError):
    """Bad input from the operator."""

    exit_code = 2
