"""What a model reads. `ModelInput` turns raw crops (as `gather_crops` gives them) into the
model's input on its device: normalised in float32, padded, (B, n_mels, T). Training and
prediction share it, so a model sees the same numbers whichever path its crops came by."""

import torch

from fat.store.normalize import Normalizer


class ModelInput:
    """Raw crops (B, T, n_mels) and their own-frame counts -> the model's input on `device`:
    float32, normalised per mel band, frames past a clip's own set to 0 (the mean) when `pad`
    is "zeros" (else the repeats stay), as (B, n_mels, T)."""

    def __init__(self, normalizer: Normalizer, device: torch.device, pad: str = "wrap"):
        self.device = device
        self.pad = pad
        self.mean = torch.from_numpy(normalizer.mean).to(device)
        self.std = torch.from_numpy(normalizer.std).to(device)

    def __call__(self, crops, own) -> torch.Tensor:
        x = torch.as_tensor(crops).to(self.device, non_blocking=True).float()
        x = (x - self.mean) / self.std
        if self.pad == "zeros":
            own = torch.as_tensor(own).to(self.device, non_blocking=True)
            frame = torch.arange(x.shape[1], device=self.device)
            x = x.masked_fill((frame[None, :] >= own[:, None])[..., None], 0.0)
        return x.transpose(1, 2)
