"""fat's CNN14/CNN10/CNN6 against the PANNs code itself (panns-inference's models.py and
torchlibrosa's front end, test-only, never its downloading AudioTagging): same parameter
names, checkpoints in the official layout load, and the same embedding for the same input."""

import importlib
import importlib.util
import sys
import types

import pytest
import torch

from fat.core.errors import FatError
from fat.models import create_model
from fat.models.pretrained import load_backbone

PANNS_FRONT_END = dict(
    sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000
)


@pytest.fixture
def panns_models(monkeypatch):
    """panns_inference.models, imported without the package's __init__, which downloads a
    label list at import time."""
    pytest.importorskip("torchlibrosa", reason="torchlibrosa (a test dependency) is missing")
    spec = importlib.util.find_spec("panns_inference")
    if spec is None:
        pytest.skip("panns-inference (a test dependency) is not installed")
    package = types.ModuleType("panns_inference")
    package.__path__ = list(spec.submodule_search_locations)
    monkeypatch.setitem(sys.modules, "panns_inference", package)
    monkeypatch.delitem(sys.modules, "panns_inference.models", raising=False)
    return importlib.import_module("panns_inference.models")


def randomised_cnn14(panns_models):
    torch.manual_seed(0)
    ref = panns_models.Cnn14(**PANNS_FRONT_END, classes_num=527)
    with torch.no_grad():  # running statistics as a trained network has them, not 0 and 1
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return ref.eval()


def test_cnn14_matches_panns_and_loads_its_checkpoint(panns_models, tmp_path):
    ref = randomised_cnn14(panns_models)
    checkpoint = tmp_path / "Cnn14_mAP=0.431.pth"  # the official files' layout
    torch.save({"model": ref.state_dict(), "iteration": 600000}, checkpoint)
    ours = create_model("cnn14", n_mels=64, n_classes=80)
    front_end = {k for k in ref.state_dict() if k.startswith(("spectrogram", "logmel"))}
    assert set(ours.state_dict()) == set(ref.state_dict()) - front_end
    taken = load_backbone(ours, checkpoint)
    assert taken == len(ours.state_dict()) - 2  # everything but fc_audioset, the new head
    ours.eval()
    wave = torch.randn(2, 32000 * 2) * 0.1
    with torch.no_grad():
        logmel = ref.logmel_extractor(ref.spectrogram_extractor(wave))  # (B, 1, T, 64)
        expected = ref(wave)["embedding"]
        got, _ = ours.features(logmel[:, 0].transpose(1, 2))
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_cnn10_and_cnn6_have_panns_names():
    cnn10 = create_model("cnn10", 64, 527).state_dict()
    cnn6 = create_model("cnn6", 64, 527).state_dict()
    for k in range(1, 5):
        assert cnn10[f"conv_block{k}.conv1.weight"].shape[2:] == (3, 3)
        assert f"conv_block{k}.conv2.weight" in cnn10 and f"conv_block{k}.bn2.weight" in cnn10
        assert cnn6[f"conv_block{k}.conv1.weight"].shape[2:] == (5, 5)
        assert f"conv_block{k}.conv2.weight" not in cnn6
    for state in (cnn10, cnn6):
        assert state["fc1.weight"].shape == (512, 512) and state["fc_audioset.weight"].shape == (
            527,
            512,
        )
        assert state["bn0.weight"].shape == (64,) and "conv_block5.conv1.weight" not in state


def test_a_checkpoint_that_does_not_fit_is_named_in_one_message(panns_models, tmp_path):
    ref = randomised_cnn14(panns_models)
    checkpoint = tmp_path / "cnn14.pth"
    torch.save({"model": ref.state_dict()}, checkpoint)
    with pytest.raises(
        FatError, match="does not fit this arch; not in the model: conv_block5"
    ) as e:
        load_backbone(create_model("cnn10", 64, 80), checkpoint)
    assert "\n" not in str(e.value)
    with pytest.raises(FatError, match=r"other shapes.*bn0.weight \(64,\) vs \(128,\)"):
        load_backbone(create_model("cnn14", 128, 80), checkpoint)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FatError, match="not a readable checkpoint"):
        load_backbone(create_model("cnn14", 64, 80), tmp_path / "junk.pth")


@pytest.mark.slow
def test_cnn14_fine_tunes_from_a_panns_checkpoint_head_first(panns_models, tmp_path, capsys):
    from fat.core.features import LogMelConfig
    from fat.core.labels import official_vocabulary
    from fat.runs.checkpoint import load_checkpoint
    from fat.store import open_store
    from fat.train.loop import train
    from tests.synthetic import synthetic_clip, tiny_run

    store = tmp_path / "features.zarr"
    with (
        open_store(store, "a") as s,
        s.writer("curated", LogMelConfig(n_mels=64), official_vocabulary()) as w,
    ):
        for i in range(24):
            w.add(synthetic_clip(i, n_mels=64))
    ref = randomised_cnn14(panns_models)
    checkpoint = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": ref.state_dict()}, checkpoint)
    out = tmp_path / "run"
    experiment, options = tiny_run(
        store, out, arch="cnn14", width=1.0, epochs=1, pretrained=str(checkpoint),
        freeze_backbone_epochs=1, val_fraction=0.25,
    )  # fmt: skip
    train(experiment, options)
    warning = capsys.readouterr().err  # the store is fat's default 44.1 kHz, not PANNs' 32 kHz
    assert "this store differs (sample_rate 44100 vs 32000, n_fft 2560 vs 1024" in warning
    after_head = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    taken = ref.state_dict()
    torch.testing.assert_close(
        after_head["conv_block3.conv1.weight"], taken["conv_block3.conv1.weight"]
    )
    torch.testing.assert_close(after_head["fc1.weight"], taken["fc1.weight"])
    assert after_head["fc_audioset.weight"].shape == (80, 2048)
    train(experiment.replace(epochs=2), options, resume=True)  # the whole network from epoch 2
    after_all = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    assert not torch.equal(after_all["conv_block3.conv1.weight"], taken["conv_block3.conv1.weight"])
