"""Append-only CSV logs that survive a resume: rows past the checkpoint are dropped on open."""

import csv
from collections.abc import Callable
from pathlib import Path


class CsvLog:
    def __init__(
        self,
        path: Path,
        columns: list[str],
        keep: Callable[[dict], bool] = lambda row: False,
        enabled: bool = True,
    ):
        """Open `path` for appending rows with `columns`. Existing rows for which `keep`
        is true stay (a resumed run's history); the rest were written after the checkpoint
        the run resumes from and would otherwise appear twice."""
        self.path, self.columns, self.enabled = path, columns, enabled
        if not enabled:
            return
        kept = []
        if path.exists():
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if keep(row)]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)
