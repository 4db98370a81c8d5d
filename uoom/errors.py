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


def describe(exc: BaseException) -> str:
    """`Type: message`, or the type alone when the exception has no message (a bare
    TimeoutError or ConnectionError says nothing by itself), never the type twice."""
    name, text = type(exc).__name__, str(exc).strip()
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"  # aiokafka's messages name their type
