"""The one exception type users see.

Anything raised as `FatError` is a problem with the user's input or environment that they can
act on; the CLI prints its message as a single line and exits 1 instead of a traceback.
"""


class FatError(Exception):
    """A user-facing error: the message names the file/row/clip and the reason."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to `limit` characters (its type if empty)."""
    return " ".join(str(error).split())[:limit] or type(error).__name__
