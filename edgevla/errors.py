"""Errors a user can act on.

Anything raised as an `EdgevlaError` reaches the terminal as one line naming the thing and
what to do, with a non-zero exit code and no traceback. Everything else is a bug and keeps
its traceback.
"""


class EdgevlaError(Exception):
    """A problem with the user's input, files or hardware, described in one actionable line."""

    exit_code = 2


class MissingExtraError(EdgevlaError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(
            f"this command needs the '{extra}' extra (module '{module}' is missing): "
            f"pip install 'edgevla[{extra}]'"
        )


def first_line(err: BaseException) -> str:
    """The first line of a library's error text (or its type), to quote inside a one-line error."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
