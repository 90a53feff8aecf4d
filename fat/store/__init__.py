"""The feature store: chunked log-mel frames per split, keyed by clip id (Zarr v3 or HDF5)."""

from fat.store.store import (
    ClipRecord,
    EncodedClip,
    FeatureStore,
    Split,
    SplitMeta,
    SplitWriter,
    checksum,
    encode_clip,
    open_store,
)

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
]
