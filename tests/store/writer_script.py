"""Writer subprocess for the fault tests: appends synthetic clips `first..first+n-1` to a split,
printing each commit. Run from the repository root as
`python -m tests.store.writer_script STORE N_CLIPS [--split S] [--first K] [--overwrite]
[--pause SECONDS]`; a FatError ends it with one `error:` line and status 1."""

import argparse
import sys
import time

from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.store import open_store
from tests.synthetic import SMALL_CONFIG, synthetic_clip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("n_clips", type=int)
    parser.add_argument("--split", default="noisy")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--pause", type=float, default=0.0, help="Seconds after each commit.")
    args = parser.parse_args()
    with open_store(args.store, "a") as store:
        writer = store.writer(
            args.split,
            SMALL_CONFIG,
            official_vocabulary(),
            overwrite=args.overwrite,
            commit_every=3,
        )
        print(f"resume {writer.n_clips}", flush=True)
        with writer:
            for i in range(args.first, args.first + args.n_clips):
                clip = synthetic_clip(i)
                if clip.clip_id in writer.committed:
                    continue
                before = writer.n_clips
                writer.add(clip)
                if writer.n_clips != before:
                    print(f"committed {writer.n_clips}", flush=True)
                    time.sleep(args.pause)
    print("done", flush=True)


if __name__ == "__main__":
    try:
        main()
    except FatError as e:
        print(f"error: {e}", flush=True)
        sys.exit(1)
