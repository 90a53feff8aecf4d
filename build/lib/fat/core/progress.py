"""Progress bars: tqdm's, on stderr, hidden by --quiet and whenever stderr is not a terminal,
so a log file gets the command's lines but no bar redraws."""

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, *, show: bool = True, **kw: Any) -> tqdm:
    """A tqdm bar over `iterable` (or to update by hand); `show=False` hides it outright,
    otherwise tqdm hides it when stderr is not a terminal (its `disable=None`)."""
    return tqdm(iterable, disable=None if show else True, **kw)
