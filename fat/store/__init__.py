"""The feature store: chunked log-mel frames per split, keyed by clip id (Zarr v3 or HDF5).

`open_store` gives a `FeatureStore`; its `split()` a `Split` to read and its `writer()` a
`SplitWriter` to append; `repair_store` does what a writer does on opening, for a store a
killed writer left. The modules: layout (arrays, metadata, checksums), backends (Zarr, HDF5),
safety (what a store from someone else may hold), index, reader, writer, verify, lock;
normalize and crops read what models consume.
"""

from fat.store.layout import SplitMeta, checksum
from fat.store.reader import Split
from fat.store.store import FeatureStore, open_store, repair_store
from fat.store.writer import ClipRecord, EncodedClip, SplitWriter, encode_clip

__all__ = [
    "ClipRecord",
    "EncodedClip",
    "FeatureStore",
    "Split",
    "SplitMeta",
    "SplitWriter",
    "checksum",
    "encode_clip",
    "open_store",
    "repair_store",
]
