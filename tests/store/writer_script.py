"""Writer subprocess for the kill test: appends synthetic clips, printing each commit.
Run as `python -m tests.store.writer_script STORE N_CLIPS` from the repository root."""

import sys

from fat.core.labels import official_vocabulary
from fat.store import open_store
from tests.synthetic import SMALL_CONFIG, synthetic_clip


def main(path: str, n_clips: int) -> None:
    with open_store(path, "a") as store:
        writer = store.writer("noisy", SMALL_CONFIG, official_vocabulary(), commit_every=3)
        print(f"resume {writer.n_clips}", flush=True)
        with writer:
            for i in range(n_clips):
                clip = synthetic_clip(i)
                if clip.clip_id in writer.committed:
                    continue
                before = writer.n_clips
                writer.add(clip)
                if writer.n_clips != before:
                    print(f"committed {writer.n_clips}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
