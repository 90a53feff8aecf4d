"""Model registry and networks: shapes, parameter groups, attention pooling, learning."""

import pytest
import torch
import torch.nn.functional as F

from fat.core.errors import FatError
from fat.models import create_model, list_models
from fat.models.networks import attention_pool

TINY = {
    "cnn": {},
    "skip_attention": {},
    "cnn14": {},
    "cnn10": {},
    "cnn6": {},
    "gcnn": {"gcnn_channels": 16, "rnn_hidden": 16},
    "gcnn_vanishing": {},
}


def tiny(arch: str, **kw):
    return create_model(arch, n_mels=16, n_classes=80, width=0.25, **{**TINY[arch], **kw})


@pytest.mark.parametrize("arch", list_models())
def test_shapes_for_any_length_and_groups_cover_parameters(arch):
    torch.manual_seed(0)
    model = tiny(arch).eval()
    for shape in [(2, 16, 128), (2, 16, 40), (1, 16, 8)]:
        logits, frames = model.forward_frames(torch.randn(shape))
        assert logits.shape == (shape[0], 80) and torch.isfinite(logits).all()
        if frames is not None:
            assert frames.shape[0] == shape[0] and frames.shape[2] == 80
            assert frames.min() >= 0 and frames.max() <= 1
    grouped = [id(p) for _, m in model.layer_groups() for p in m.parameters()]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert len(grouped) == len(set(grouped))


def test_registry_errors_are_clear():
    with pytest.raises(FatError, match="unknown arch 'nope'; choose from cnn"):
        create_model("nope", 16, 80)
    with pytest.raises(FatError, match="colour"):
        create_model("cnn", 16, 80, colour="red")
    with pytest.raises(FatError, match="rnn_gate"):
        create_model("gcnn", 16, 80, rnn_gate="tanh")


def test_width_scales_parameters():
    def count(width):
        return sum(p.numel() for p in create_model("cnn", 16, 80, width).parameters())

    assert count(0.25) < count(0.5) < count(1.0)


def test_attention_weights_sum_to_one_and_log_pooling_is_stable():
    torch.manual_seed(0)
    model = tiny("gcnn").eval()
    model.forward_frames(torch.randn(3, 16, 64))
    w = model.last_attention
    assert torch.allclose(w.sum(dim=1), torch.ones(3, 80), atol=1e-5)
    frame, att = torch.randn(2, 10, 5), torch.randn(2, 10, 5)
    log_logits, _ = attention_pool(frame, att, "log")
    prob_logits, _ = attention_pool(frame, att, "prob")
    assert torch.allclose(torch.sigmoid(log_logits), torch.sigmoid(prob_logits), atol=1e-5)
    # Saturated frames: the log-space logit stays finite and keeps a gradient; the clamped
    # probability-space one passes none (the seed's dead gradients).
    huge = (torch.randn(2, 10, 5) * 1e4).requires_grad_()
    logits, _ = attention_pool(huge, att, "log")
    assert torch.isfinite(logits).all()
    F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)).backward()
    assert huge.grad.abs().sum() > 0
    dead = (torch.full((2, 10, 5), -40.0)).requires_grad_()
    logits, _ = attention_pool(dead, att, "prob")
    F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    assert dead.grad.abs().sum() == 0


@pytest.mark.parametrize("arch", ["cnn", "skip_attention", "gcnn"])
def test_a_few_steps_lower_the_loss_and_reach_the_first_layer(arch):
    torch.manual_seed(0)
    model = tiny(arch)
    x = torch.randn(8, 16, 32)
    y = torch.zeros(8, 80)
    y[torch.arange(8), torch.arange(8) % 5] = 1
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            first = next(model.layer_groups()[0][1].parameters())
            assert first.grad is not None and first.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses


def test_recurrent_stack_with_tanh_equals_torch_gru():
    """The hand-written GRU (needed for the paper's linear/sigmoid activations) is torch's GRU
    when given tanh and the same weights."""
    from fat.models.networks import BiGRUStack

    torch.manual_seed(0)
    ours = BiGRUStack(6, 5, ("tanh",), init="plain")
    theirs = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for k, suffix in enumerate(("", "_reverse")):
            ours.w_ih[k].copy_(getattr(theirs, f"weight_ih_l0{suffix}").T)
            ours.w_hh[k].copy_(getattr(theirs, f"weight_hh_l0{suffix}").T)
            ours.b_ih[k, 0].copy_(getattr(theirs, f"bias_ih_l0{suffix}"))
            ours.b_hh[k, 0].copy_(getattr(theirs, f"bias_hh_l0{suffix}"))
    x = torch.randn(3, 7, 6)
    assert torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-6)


def test_gated_recurrent_layer_is_linear_times_sigmoid():
    from fat.models.networks import GatedBiGRU

    torch.manual_seed(0)
    layer = GatedBiGRU(6, 5, gate="gated")
    linear, sigmoid = layer.rnns(torch.randn(2, 9, 6))
    assert linear.min() < -0.05 or linear.max() > 1.05  # not squashed
    assert sigmoid.min() >= 0 and sigmoid.max() <= 1
    seed = GatedBiGRU(6, 5, gate="sigmoid")
    out = seed(torch.randn(2, 9, 6))
    assert out.shape == (2, 9, 10) and out.min() >= 0 and out.max() <= 1


def test_auxiliary_heads_train_but_do_not_predict():
    torch.manual_seed(0)
    model = tiny("skip_attention", aux_weights=[0.5, 0.25, 0.0])
    assert model.aux_weights == (0.5, 0.25, 0.0)
    x = torch.randn(4, 16, 40)
    out = model.forward_train(x)
    assert len(out.aux) == 3 and all(a.shape == (4, 80) for a in out.aux)
    out.aux[0].sum().backward()  # the deepest skip's head reaches the third block
    assert model.skips[2].conv.weight.grad.abs().sum() > 0
    assert model.skips[0].conv.weight.grad is None and model.classifier.weight.grad is None
    model.eval()
    with torch.no_grad():  # predictions are the main head's, whatever the auxiliary heads say
        before = model(x)
        for head in model.aux_heads:
            head[-1].weight.add_(1.0)
        assert torch.equal(model(x), before)
        assert torch.equal(model.forward_train(x).logits, before)
    with pytest.raises(FatError, match="aux_weights must be 3"):
        tiny("skip_attention", aux_weights=[1.0])


@pytest.mark.parametrize("arch", ["cnn", "skip_attention", "cnn10"])
def test_noisy_head_is_a_second_classifier_over_the_same_embedding(arch):
    torch.manual_seed(0)
    model = tiny(arch)
    plain_keys = set(model.state_dict())
    model.add_noisy_head()
    assert set(model.state_dict()) - plain_keys == {
        "noisy_classifier.weight",
        "noisy_classifier.bias",
    }
    model.eval()
    x = torch.randn(3, 16, 40)
    out = model.forward_train(x)
    embedding, _ = model.features(x)
    assert torch.allclose(out.noisy, model.noisy_classifier(embedding))
    assert torch.allclose(out.logits, model(x)) and not torch.allclose(out.noisy, out.logits)
    grouped = [id(p) for _, m in model.layer_groups() for p in m.parameters()]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())


def test_noisy_head_needs_a_clip_classifier():
    with pytest.raises(FatError, match="--noisy-head works with"):
        tiny("gcnn").add_noisy_head()
