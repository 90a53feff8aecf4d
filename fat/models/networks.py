"""Tagging networks: blocks and networks in one file. Each network maps a normalised log-mel
crop (B, n_mels, T) to clip logits (B, n_classes); `fat.models.registry` names them."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from fat.core.errors import FatError


def scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def set_prior_bias(layer: nn.Linear, prior: float = 0.02) -> None:
    """Start every class at a small probability, as sparse multi-hot targets are: otherwise the
    first hundreds of steps only learn to push 80 logits down from p = 0.5."""
    nn.init.constant_(layer.bias, float(torch.logit(torch.tensor(prior))))


class TaggingModel(nn.Module):
    """(B, n_mels, T) normalised log-mel -> clip logits (B, n_classes)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_frames(x)[0]

    def forward_frames(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        """Named parts whose gradient norms are logged (together they hold every parameter)."""
        raise NotImplementedError


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


class BaselineCNN(TaggingModel):
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

    def forward_frames(self, x: Tensor) -> tuple[Tensor, None]:
        x = x[:, None]
        for block in self.blocks:
            x = block(x)
        x = x.mean(dim=2).amax(dim=2)
        return self.head(x), None

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        return [(f"block{i + 1}", b) for i, b in enumerate(self.blocks)] + [("head", self.head)]


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
