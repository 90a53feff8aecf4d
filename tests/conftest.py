"""Fixtures shared across the suite: small real stores and runs trained on them. Helpers that
make data are plain functions in tests/synthetic.py."""

from pathlib import Path

import pytest

from fat.train.loop import train
from tests.synthetic import build_store, tiny_run


@pytest.fixture(params=["zarr", "h5"])
def store_path(request, tmp_path) -> Path:
    """A store path to create, once per format."""
    return tmp_path / f"features.{request.param}"


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """48 synthetic curated clips, 16 mel bands."""
    path = tmp_path_factory.mktemp("tiny") / "features.zarr"
    build_store(path, 48)
    return path


@pytest.fixture(scope="session")
def labelled_store(tmp_path_factory) -> Path:
    """60 curated clips and a labelled test split of 12."""
    path = tmp_path_factory.mktemp("labelled") / "features.zarr"
    build_store(path, 60, split="curated")
    build_store(path, 12, split="test")
    return path


@pytest.fixture(scope="session")
def trained_cnn(labelled_store, tmp_path_factory) -> Path:
    """A CNN run, one epoch on `labelled_store`."""
    out = tmp_path_factory.mktemp("cnn") / "cnn"
    train(*tiny_run(labelled_store, out, epochs=1, seed=1, lr=3e-4, log_every=10))
    return out


@pytest.fixture(scope="session")
def trained_gcnn(labelled_store, tmp_path_factory) -> Path:
    """A GCNN run (frame outputs), two epochs; 30% held out so its validation set holds
    enough classes for the per-class chart to count them."""
    out = tmp_path_factory.mktemp("gcnn") / "gcnn"
    train(
        *tiny_run(labelled_store, out, arch="gcnn", seed=1, lr=3e-4, val_fraction=0.3, log_every=10)
    )
    return out
