"""Tagging networks: blocks and networks in one file. Each network maps a normalised log-mel
crop (B, n_mels, T) to clip logits (B, n_classes); `fat.models.registry` names them."""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from fat.core.errors import FatError


def scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def set_prior_bias(layer: nn.Linear, prior: float = 0.02) -> None:
    """Start every class at a small probability, as sparse multi-hot targets are: otherwise the
    first hundreds of steps only learn to push 80 logits down from p = 0.5."""
    nn.init.constant_(layer.bias, float(torch.logit(torch.tensor(prior))))


class TrainingOutputs(NamedTuple):
    """What a training step's loss reads: the clip logits, the auxiliary heads' logits
    (weighted by the network's `aux_weights`) and the noisy-clip head's logits (or None)."""

    logits: Tensor
    aux: tuple[Tensor, ...] = ()
    noisy: Tensor | None = None


class TaggingModel(nn.Module):
    """(B, n_mels, T) normalised log-mel -> clip logits (B, n_classes)."""

    aux_weights: tuple[float, ...] = ()  # loss weight of each auxiliary head, main head's is 1
    # Trained with softmax cross-entropy (one label per clip): its probabilities are a softmax
    # over classes; else one sigmoid per class. Set by the run that builds it.
    single_label: bool = False

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_frames(x)[0]

    def probabilities(self, logits: Tensor) -> Tensor:
        """Class probabilities of clip logits, as the model was trained to give them."""
        return torch.softmax(logits, dim=-1) if self.single_label else torch.sigmoid(logits)

    def forward_frames(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def forward_train(self, x: Tensor) -> TrainingOutputs:
        return TrainingOutputs(self(x))

    def add_noisy_head(self) -> None:
        """A second classifier that the noisy clips' loss goes through (`--noisy-head`)."""
        raise FatError(
            f"{type(self).__name__} has no clip-level classifier to give a noisy-clip head; "
            "--noisy-head works with the cnn, skip_attention and PANNs (cnn14, cnn10, cnn6) archs"
        )

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        """Named parts whose gradient norms are logged (together they hold every parameter)."""
        raise NotImplementedError


class ClipClassifierModel(TaggingModel):
    """A network that ends in a clip embedding and one linear classifier over it; it can
    grow a second classifier for noisy clips, which shares everything but that layer."""

    classifier: nn.Linear

    def __init__(self):
        super().__init__()
        self.register_module("noisy_classifier", None)  # set by add_noisy_head

    def features(self, x: Tensor, aux: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The clip embedding (B, D) the classifier reads, and with `aux` the auxiliary
        heads' logits."""
        raise NotImplementedError

    def forward_frames(self, x: Tensor) -> tuple[Tensor, None]:
        return self.classifier(self.features(x)[0]), None

    # Networks whose embedding is a pooling over time of a per-time-step map can score many
    # overlapping windows from one convolutional pass (`fat detect`): `time_map` gives the
    # map (B, C, T / time_stride), `window_embeddings` pools each window of it.
    time_stride: int = 0  # 0: no such map; windows are scored one by one

    def time_map(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def window_embeddings(self, seq: Tensor, width: int, hop: int) -> Tensor:
        """(n_windows, D) embeddings of the windows of `width` steps every `hop` steps of a
        (1, C, T') time map, as `features` gives one window's."""
        raise NotImplementedError

    def forward_train(self, x: Tensor) -> TrainingOutputs:
        embedding, aux = self.features(x, aux=True)
        noisy = self.noisy_classifier(embedding) if self.noisy_classifier is not None else None
        return TrainingOutputs(self.classifier(embedding), aux, noisy)

    def add_noisy_head(self) -> None:
        head = nn.Linear(self.classifier.in_features, self.classifier.out_features)
        set_prior_bias(head)
        self.noisy_classifier = head.to(self.classifier.weight.device)


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 average pooling (the FAT2019 baseline block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        # Pool only axes still longer than 1, so short inputs survive four blocks.
        return nn.functional.avg_pool2d(x, (2 if x.shape[2] > 1 else 1, 2 if x.shape[3] > 1 else 1))


class BaselineCNN(ClipClassifierModel):
    """The FSDKaggle2019 baseline: 4 conv blocks (64-128-256-512 x width), mean over
    frequency, max over time, then a small MLP head."""

    def __init__(self, n_mels: int, n_classes: int, width: float = 1.0):
        super().__init__()
        chans = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([1, *chans[:-1]], chans, strict=True)
        )
        self.head = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(chans[-1], chans[-1]),
            nn.PReLU(),
            nn.BatchNorm1d(chans[-1]),
            nn.Dropout(0.1),
            nn.Linear(chans[-1], n_classes),
        )
        set_prior_bias(self.head[-1])

    @property
    def classifier(self) -> nn.Linear:  # the head's last layer, under its checkpoint name
        return self.head[-1]

    time_stride = 16  # four 2x2 poolings

    def time_map(self, x: Tensor) -> Tensor:
        x = x[:, None]
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=2)

    def window_embeddings(self, seq: Tensor, width: int, hop: int) -> Tensor:
        pooled = nn.functional.max_pool1d(seq, width, hop)  # (1, C, n_windows)
        return self.head[:-1](pooled[0].T)

    def features(self, x: Tensor, aux: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        return self.head[:-1](self.time_map(x).amax(dim=2)), ()

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        groups = [(f"block{i + 1}", b) for i, b in enumerate(self.blocks)] + [("head", self.head)]
        return groups + ([("noisy_head", self.noisy_classifier)] if self.noisy_classifier else [])


def classifier_mlp(c_in: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    """Dropout -> linear -> PReLU -> BN -> dropout/2: the hidden layer of a clip head (the
    classifier after it is separate, so a noisy-clip head can share this part)."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(c_in, hidden),
        nn.PReLU(),
        nn.BatchNorm1d(hidden),
        nn.Dropout(dropout / 2),
    )


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018): channels reweighted by an MLP over their average and maximum,
    then positions by a 7x7 conv over the channels' average and maximum."""

    def __init__(self, channels: int, ratio: int = 16, kernel_size: int = 7):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.channel_mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.channel_mlp(x.mean((2, 3), keepdim=True))
        pooled = pooled + self.channel_mlp(x.amax((2, 3), keepdim=True))
        x = x * torch.sigmoid(pooled)
        summary = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(summary))


class SkipProjection(nn.Module):
    """An earlier block's output average-pooled to the last block's grid, then 3x3 conv + BN +
    ReLU to the skip width: how every block reaches the head directly."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor, grid: tuple[int, int] | None) -> Tensor:
        if grid is not None:
            x = nn.functional.adaptive_avg_pool2d(x, grid)
        return torch.relu(self.bn(self.conv(x)))


class SkipAttentionCNN(ClipClassifierModel):
    """The FAT2019 1st-place network (argus-freesound's AuxSkipAttention): four double-conv
    blocks (64-128-256-512 x width); the first three also reach the end through skip
    projections to 512 x width channels; all four are concatenated, weighted by channel and
    spatial attention, merged by a 3x3 conv, average-pooled to a clip embedding and classified
    by an MLP. Auxiliary heads on the three skips (deepest first) are trained with loss
    weights `aux_weights` (the original's 0.4, 0.2, 0.1) and ignored when predicting."""

    def __init__(
        self,
        n_mels: int,
        n_classes: int,
        width: float = 1.0,
        dropout: float = 0.4,
        attention_ratio: int = 16,
        merge_channels: int = 512,
        hidden: int = 256,
        aux_weights: tuple[float, ...] | list[float] = (0.4, 0.2, 0.1),
    ):
        super().__init__()
        if len(aux_weights) != 3 or any(w < 0 for w in aux_weights):
            raise FatError(
                f"aux_weights must be 3 weights >= 0 (deepest skip first): {aux_weights}"
            )
        self.aux_weights = tuple(float(w) for w in aux_weights)
        chans = [scaled(c, width) for c in (64, 128, 256, 512)]
        skip, merged, hid = chans[-1], scaled(merge_channels, width), scaled(hidden, width)
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([1, *chans[:-1]], chans, strict=True)
        )
        self.skips = nn.ModuleList(SkipProjection(c, skip) for c in chans[:-1])
        self.attention = ChannelSpatialAttention(4 * skip, attention_ratio)
        self.merge = SkipProjection(4 * skip, merged)
        self.head = classifier_mlp(merged, hid, n_classes, dropout)
        self.classifier = nn.Linear(hid, n_classes)
        # aux_heads[i] reads skips[i]: shallowest first, like the blocks.
        self.aux_heads = nn.ModuleList(
            nn.Sequential(classifier_mlp(skip, hid, n_classes, dropout), nn.Linear(hid, n_classes))
            for _ in self.skips
        )
        for linear in [self.classifier, *(h[-1] for h in self.aux_heads)]:
            set_prior_bias(linear)

    def features(self, x: Tensor, aux: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        x = x[:, None]
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        grid = (x.shape[2], x.shape[3])
        skips = [proj(out, grid) for proj, out in zip(self.skips, outputs[:-1], strict=True)]
        x = self.merge(self.attention(torch.cat([x, *skips], dim=1)), None)
        embedding = self.head(x.mean((2, 3)))
        if not aux:
            return embedding, ()
        aux_logits = [h(s.mean((2, 3))) for h, s in zip(self.aux_heads, skips, strict=True)]
        return embedding, tuple(reversed(aux_logits))  # deepest first, as aux_weights

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        head = nn.ModuleList([self.head, self.classifier])
        if self.noisy_classifier is not None:
            head.append(self.noisy_classifier)
        return (
            [(f"block{i + 1}", b) for i, b in enumerate(self.blocks)]
            + [("skips", self.skips), ("attention", nn.ModuleList([self.attention, self.merge]))]
            + [("head", head), ("aux_heads", self.aux_heads)]
        )


class GatedConvBlock(nn.Module):
    """3x3 conv to 2C channels -> BN -> GLU: a linear half gated by a sigmoid half."""

    def __init__(self, c_in: int, c_out: int, init: str = "default"):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * c_out)
        if init == "default":
            nn.init.xavier_uniform_(self.conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.glu(self.bn(self.conv(x)), dim=1)


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda v: v,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


class BiGRUStack(nn.Module):
    """Independent bidirectional GRUs over the same input, one per candidate activation, run in
    one batched loop over time. torch's nn.GRU fixes the activation to tanh; the paper's layer
    (Keras `GRU(activation=...)` in the official code) needs "linear" and "sigmoid".

    Gates follow torch/cuDNN: r, z = sigmoid(W x + b + U h + c); n = act(W_n x + b_n +
    r * (U_n h + c_n)); h' = (1 - z) * n + z * h. Returns one (B, T, 2H) output per activation.
    """

    def __init__(self, n_in: int, hidden: int, activations: tuple[str, ...], init: str):
        super().__init__()
        unknown = set(activations) - set(_ACTIVATIONS)
        if unknown:
            raise FatError(f"unknown recurrent activation {sorted(unknown)}")
        self.activations = activations
        self.hidden = hidden
        rnns = 2 * len(activations)  # forward and backward of each
        self.w_ih = nn.Parameter(torch.empty(rnns, n_in, 3 * hidden))
        self.w_hh = nn.Parameter(torch.empty(rnns, hidden, 3 * hidden))
        self.b_ih = nn.Parameter(torch.zeros(rnns, 1, 3 * hidden))
        self.b_hh = nn.Parameter(torch.zeros(rnns, 1, 3 * hidden))
        with torch.no_grad():
            if init == "default":  # Xavier input weights, orthogonal recurrent ones, zero bias
                for k in range(rnns):
                    for g in range(3):
                        cols = slice(g * hidden, (g + 1) * hidden)
                        nn.init.xavier_uniform_(self.w_ih[k, :, cols])
                        nn.init.orthogonal_(self.w_hh[k, :, cols])
            else:  # torch's nn.GRU default: everything uniform in +-1/sqrt(hidden)
                for p in self.parameters():
                    nn.init.uniform_(p, -(hidden**-0.5), hidden**-0.5)

    def forward(self, x: Tensor) -> list[Tensor]:
        steps, half = x.shape[1], len(self.activations)
        # Backward directions read the sequence reversed; all inputs projected at once.
        seq = torch.stack([x, x.flip(1)] * half)  # (rnns, B, T, I)
        gates_x = torch.matmul(seq, self.w_ih[:, None]) + self.b_ih[:, None]
        h = x.new_zeros(len(seq), x.shape[0], self.hidden)
        outputs = []
        for t in range(steps):
            x_r, x_z, x_n = gates_x[:, :, t].chunk(3, dim=-1)
            h_r, h_z, h_n = torch.baddbmm(self.b_hh, h, self.w_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            pre = x_n + r * h_n
            n = torch.cat(
                [_ACTIVATIONS[a](pre[2 * i : 2 * i + 2]) for i, a in enumerate(self.activations)]
            )
            h = (1 - z) * n + z * h
            outputs.append(h)
        out = torch.stack(outputs, dim=2)  # (rnns, B, T, H)
        return [torch.cat([out[2 * i], out[2 * i + 1].flip(1)], dim=-1) for i in range(half)]


class GatedBiGRU(nn.Module):
    """The paper's gated recurrent layer: a bidirectional GRU with linear activation multiplied
    by one with sigmoid activation ("gated", the official code's
    `GRU(activation='linear') * GRU(activation='sigmoid')`), or one GRU with sigmoid activation
    and no linear path ("sigmoid"), whose outputs saturate."""

    def __init__(self, n_in: int, hidden: int, gate: str = "gated", init: str = "default"):
        super().__init__()
        if gate not in ("gated", "sigmoid"):
            raise FatError(f"rnn_gate must be gated or sigmoid, got {gate!r}")
        self.gate = gate
        activations = ("linear", "sigmoid") if gate == "gated" else ("sigmoid",)
        self.rnns = BiGRUStack(n_in, hidden, activations, init)

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.rnns(x)
        return outputs[0] * outputs[1] if len(outputs) == 2 else outputs[0]


def attention_pool(
    frame_logits: Tensor, attention_logits: Tensor, pooling: str = "log"
) -> tuple[Tensor, Tensor]:
    """Clip logits from frame-level class logits and attention logits, both (B, T, C):
    clip p = sum_t(p_t * w_t) with w = softmax over time (so sum_t w = 1, the paper's
    sum(p*w)/sum(w)).

    "log" computes log p and log(1 - p) of the clip with logsumexp, so the logit stays finite
    and its gradient alive however confident the frames are. "prob" is the
    probability-space version with p clamped to [1e-7, 1 - 1e-7]: once a class saturates the
    clamp passes no gradient at all. Returns (clip logits, attention weights)."""
    log_w = torch.log_softmax(attention_logits, dim=1)
    if pooling == "log":
        log_p = torch.logsumexp(log_w + nn.functional.logsigmoid(frame_logits), dim=1)
        log_not_p = torch.logsumexp(log_w + nn.functional.logsigmoid(-frame_logits), dim=1)
        return log_p - log_not_p, log_w.exp()
    if pooling == "prob":
        w = log_w.exp()
        p = (torch.sigmoid(frame_logits) * w).sum(dim=1).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p), w
    raise FatError(f"pooling must be log or prob, got {pooling!r}")


class GatedCRNN(TaggingModel):
    """The gated convolutional recurrent network of Xu, Kong, Wang, Plumbley 2017
    (arXiv 1710.00343, DCASE 2017 task 4 winner; official code yongxuUSTC/dcase2017_task4_cvssp):
    four pairs of gated conv blocks with max pooling, a conv to a wider embedding, a gated
    bidirectional GRU, and frame-level class probabilities pooled to the clip by attention.

    Deviation from the paper, for speed on long crops: the first two pairs also pool time by 2,
    so frame outputs come every 4 input frames (~32 ms at the default hop)."""

    def __init__(
        self,
        n_mels: int,
        n_classes: int,
        width: float = 1.0,
        gcnn_channels: int = 64,
        rnn_hidden: int = 128,
        rnn_gate: str = "gated",
        pooling: str = "log",
        init: str = "default",
        prior_bias: bool = True,
    ):
        super().__init__()
        if init not in ("default", "plain"):
            raise FatError(f"init must be default or plain, got {init!r}")
        c = scaled(gcnn_channels, width)
        self.pooling = pooling
        self.time_pools = (2, 2, 1, 1)
        self.pairs = nn.ModuleList(
            nn.Sequential(GatedConvBlock(c_in, c, init), GatedConvBlock(c, c, init))
            for c_in in (1, c, c, c)
        )
        self.embed = nn.Sequential(
            nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU()
        )
        freq = n_mels
        for _ in self.pairs:
            freq = max(freq // 2, 1)
        hidden = scaled(rnn_hidden, width)
        self.rnn = GatedBiGRU(2 * c * freq, hidden, rnn_gate, init)
        self.frame_head = nn.Linear(2 * hidden, n_classes)
        self.attention_head = nn.Linear(2 * hidden, n_classes)
        if prior_bias:
            set_prior_bias(self.frame_head)
        self.last_attention: Tensor | None = None

    def forward_frames(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x[:, None]
        for pair, time_pool in zip(self.pairs, self.time_pools, strict=True):
            x = pair(x)
            x = nn.functional.max_pool2d(
                x, (2 if x.shape[2] > 1 else 1, time_pool if x.shape[3] >= time_pool else 1)
            )
        x = self.embed(x)  # (B, C, F', T')
        x = x.permute(0, 3, 1, 2).flatten(2)  # (B, T', C * F')
        h = self.rnn(x)
        frame_logits = self.frame_head(h)
        clip_logits, self.last_attention = attention_pool(
            frame_logits, self.attention_head(h), self.pooling
        )
        return clip_logits, torch.sigmoid(frame_logits)

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        return (
            [(f"gated{i + 1}", pair) for i, pair in enumerate(self.pairs)]
            + [("embed", self.embed), ("rnn", self.rnn)]
            + [("heads", nn.ModuleList([self.frame_head, self.attention_head]))]
        )


def pool_where_possible(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Average-pool by `size`, leaving alone any axis already shorter than its pool."""
    kernel = tuple(k if n >= k else 1 for k, n in zip(size, x.shape[2:], strict=True))
    return nn.functional.avg_pool2d(x, kernel) if kernel != (1, 1) else x


class PannsConvBlock(nn.Module):
    """PANNs' ConvBlock (two 3x3 conv + BN + ReLU) or ConvBlock5x5 (one 5x5), with its
    parameter names (conv1, bn1, conv2, bn2), so checkpoints load unchanged."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.double = kernel == 3
        if self.double:
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: Tensor, pool: tuple[int, int]) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        if self.double:
            x = torch.relu(self.bn2(self.conv2(x)))
        return pool_where_possible(x, pool)


class PannsCNN(ClipClassifierModel):
    """CNN14, CNN10 and CNN6 of PANNs (Kong et al. 2020, arXiv 1912.10211; code
    qiuqiangkong/audioset_tagging_cnn), with PANNs' module and parameter names (bn0,
    conv_block1..N, fc1, fc_audioset), so the official checkpoints' weights load as they are.
    Input: the (B, n_mels, T) log-mel of `fat featurize --preset panns` (64 mels), normalised
    by PANNs' own bn0 over mel bands. `blocks` conv blocks of 64 * 2^k channels (x width),
    `kernel` 3 (two 3x3 convs per block) or 5 (one 5x5), the last of six blocks unpooled;
    mean over frequency, max + mean over time, fc1 + ReLU: the embedding."""

    def __init__(
        self, n_mels: int, n_classes: int, width: float = 1.0, blocks: int = 6, kernel: int = 3
    ):
        super().__init__()
        if blocks not in (4, 6) or kernel not in (3, 5):
            raise FatError(f"PANNs CNNs have 4 or 6 blocks of kernel 3 or 5: {blocks}, {kernel}")
        chans = [scaled(64 * 2**k, width) for k in range(blocks)]
        self.pools = [(2, 2)] * (blocks - 1) + [(1, 1) if blocks == 6 else (2, 2)]
        self.bn0 = nn.BatchNorm2d(n_mels)
        for k, (c_in, c_out) in enumerate(zip([1, *chans[:-1]], chans, strict=True)):
            self.add_module(f"conv_block{k + 1}", PannsConvBlock(c_in, c_out, kernel))
        self.fc1 = nn.Linear(chans[-1], chans[-1])
        self.fc_audioset = nn.Linear(chans[-1], n_classes)
        for linear in (self.fc1, self.fc_audioset):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        set_prior_bias(self.fc_audioset)

    @property
    def classifier(self) -> nn.Linear:  # under its PANNs name, replaced for a new vocabulary
        return self.fc_audioset

    def conv_blocks(self) -> list[PannsConvBlock]:
        return [getattr(self, f"conv_block{k + 1}") for k in range(len(self.pools))]

    @property
    def time_stride(self) -> int:
        return math.prod(time for time, _ in self.pools)

    def time_map(self, x: Tensor) -> Tensor:
        x = self.bn0(x[:, :, :, None]).permute(0, 3, 2, 1)  # (B, 1, T, mels), PANNs' layout
        for block, pool in zip(self.conv_blocks(), self.pools, strict=True):
            x = nn.functional.dropout(block(x, pool), 0.2, self.training)
        return x.mean(dim=3)  # (B, C, T')

    def window_embeddings(self, seq: Tensor, width: int, hop: int) -> Tensor:
        pooled = nn.functional.max_pool1d(seq, width, hop) + nn.functional.avg_pool1d(
            seq, width, hop
        )
        return torch.relu(self.fc1(pooled[0].T))

    def features(self, x: Tensor, aux: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        x = self.time_map(x)
        x = x.amax(dim=2) + x.mean(dim=2)
        x = nn.functional.dropout(x, 0.5, self.training)
        return torch.relu(self.fc1(x)), ()

    def backbone(self) -> list[nn.Module]:
        """Everything but the classifier: what `--freeze-backbone-epochs` holds still."""
        return [self.bn0, *self.conv_blocks(), self.fc1]

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        blocks = [(f"conv_block{k + 1}", b) for k, b in enumerate(self.conv_blocks())]
        head = nn.ModuleList([self.fc1, self.fc_audioset])
        if self.noisy_classifier is not None:
            head.append(self.noisy_classifier)
        return [("bn0", self.bn0), *blocks, ("head", head)]
