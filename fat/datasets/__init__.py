"""Data sets in their own published layouts (`fat featurize --dataset NAME`): each adapter is
one module whose class reads a layout into a `DatasetListing` (base.py), registered below by
name, like the models and the store backends."""

from fat.core.errors import FatError
from fat.datasets.base import (
    ClipEntry,
    Dataset,
    DatasetListing,
    DatasetOptions,
    Issue,
    SplitListing,
)

_REGISTRY: dict[str, type[Dataset]] = {}


def register_dataset(adapter: type[Dataset]) -> type[Dataset]:
    """Make `adapter` available under its `name`."""
    _REGISTRY[adapter.name] = adapter
    return adapter


def dataset_names() -> list[str]:
    return list(_REGISTRY)


def get_dataset(name: str) -> Dataset:
    if name not in _REGISTRY:
        raise FatError(f"unknown data set {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]()


def headline_metric(name: str, single_label: bool) -> str:
    """The metric a data set's field reports first: accuracy for sets whose clips carry one
    label, else the adapter's own (lwlrap for FSDKaggle2019, mAP for FSD50K and AudioSet);
    lwlrap for a data set this version does not know."""
    if single_label:
        return "accuracy"
    return _REGISTRY[name].headline if name in _REGISTRY else "lwlrap"


from fat.datasets.fat2019 import FSDKaggle2019  # noqa: E402 - registered in this order

register_dataset(FSDKaggle2019)

__all__ = [
    "ClipEntry",
    "Dataset",
    "DatasetListing",
    "DatasetOptions",
    "Issue",
    "SplitListing",
    "dataset_names",
    "get_dataset",
    "headline_metric",
    "register_dataset",
]

from fat.datasets.audioset import AudioSet  # noqa: E402
from fat.datasets.esc50 import ESC50  # noqa: E402
from fat.datasets.folders import Folders  # noqa: E402
from fat.datasets.fsd50k import FSD50K  # noqa: E402
from fat.datasets.manifest import CsvManifest  # noqa: E402

register_dataset(FSD50K)
register_dataset(ESC50)
register_dataset(AudioSet)
register_dataset(CsvManifest)
register_dataset(Folders)
