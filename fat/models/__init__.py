"""Tagging models: the networks (`networks.py`, one file of blocks and networks) and the
registry that names them (`create_model`, `list_models`). A new model is a class in
networks.py and one `register_model` line below."""

from fat.models.networks import (
    BaselineCNN,
    GatedCRNN,
    PannsCNN,
    SkipAttentionCNN,
    TaggingModel,
    TrainingOutputs,
)
from fat.models.registry import (
    create_model,
    list_models,
    model_settings,
    register_model,
    unknown_settings,
)

register_model("cnn", BaselineCNN, "the FAT2019 baseline CNN: 4 double-conv blocks, MLP head")
register_model(
    "skip_attention",
    SkipAttentionCNN,
    "the FAT2019 1st-place network: conv blocks with skip connections to the head, channel "
    "and spatial attention, auxiliary heads on the skips (loss weights aux_weights)",
)
for name, blocks, kernel in (("cnn14", 6, 3), ("cnn10", 4, 3), ("cnn6", 4, 5)):
    register_model(
        name,
        PannsCNN,
        f"PANNs {name.upper()} (AudioSet-pretrainable; PANNs' parameter names, so official "
        "checkpoints load with --pretrained); expects `fat featurize --preset panns` features",
        blocks=blocks,
        kernel=kernel,
    )
register_model(
    "gcnn",
    GatedCRNN,
    "gated convolutional recurrent network (arXiv 1710.00343) with attention pooling",
)
register_model(
    "gcnn_vanishing",
    GatedCRNN,
    "the GCNN whose gradients vanish (docs/gcnn.md): sigmoid-only recurrent layer, "
    "probability-space pooling, framework-default init, zero output bias",
    gcnn_channels=64,
    rnn_gate="sigmoid",
    pooling="prob",
    init="plain",
    prior_bias=False,
)

__all__ = [
    "TaggingModel",
    "TrainingOutputs",
    "create_model",
    "list_models",
    "model_settings",
    "register_model",
    "unknown_settings",
]
