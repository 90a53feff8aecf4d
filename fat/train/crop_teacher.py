"""The teacher of `--teacher-targets crop`: every crop the student trains on, after its
augmentation and mixing, is predicted by the teacher's models beside the student, so the
student learns the teacher's answer to exactly what it sees (the "consistent teacher" of
distillation), instead of one prediction per clip computed before training."""

from collections.abc import Sequence

import torch
from torch import Tensor

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.predict.ensemble import Source
from fat.runs.checkpoint import TrainedModel, load_trained_model
from fat.store.normalize import Normalizer
from fat.train.compiled import compile_module


class CropTeacher:
    """The members of the teacher sources on the student's device, in eval mode, each fed the
    student's input re-normalised to its own statistics (an exact per-mel affine map, so a
    mixed or masked crop stays the same crop)."""

    def __init__(
        self,
        members: Sequence[TrainedModel],
        student_normalizer: Normalizer,
        device: torch.device,
        temperature: float,
        weight: float,
        compiled: bool = False,
    ):
        self.device, self.temperature, self.weight = device, temperature, weight
        self.models, self.maps = [], []
        mean_s = torch.from_numpy(student_normalizer.mean).to(device)
        std_s = torch.from_numpy(student_normalizer.std).to(device)
        for member in members:
            mean_m = torch.from_numpy(member.normalizer.mean).to(device)
            std_m = torch.from_numpy(member.normalizer.std).to(device)
            scale, shift = std_s / std_m, (mean_s - mean_m) / std_m
            self.maps.append((scale[None, :, None], shift[None, :, None]))
            model = member.model.to(device).eval()
            self.models.append(compile_module(model, device) if compiled else model)
        self.single_label = members[0].single_label

    @torch.no_grad()
    def targets(self, x: Tensor, y: Tensor) -> Tensor:
        """`weight` x the teacher's mean prediction on the student's input `x` (B, mels, T),
        softened by `temperature`, + (1 - weight) x the (mixed) labels `y`."""
        probs = torch.zeros_like(y)
        for model, (scale, shift) in zip(self.models, self.maps, strict=True):
            with torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda"):
                logits = model(x * scale + shift)
            logits = logits.float() / self.temperature
            probs += torch.softmax(logits, -1) if self.single_label else torch.sigmoid(logits)
        return self.weight * probs / len(self.models) + (1 - self.weight) * y


def load_crop_teacher(
    sources: Sequence[str],
    feature_config: LogMelConfig,
    vocabulary: Sequence[str],
    normalizer: Normalizer,
    device: torch.device,
    temperature: float,
    weight: float,
    compiled: bool = False,
) -> CropTeacher:
    """The teacher of a run that learns from it crop by crop (its members compiled with
    `compiled`, as the student's step is); FatError naming a member whose features or classes
    are not the student's (its predictions would be of other inputs or in another order), or a
    source that is gone (a resumed run needs its teacher again)."""
    members = []
    for text in sources:
        try:
            source = Source.parse(text, "best")
        except FatError as e:
            raise FatError(f"--teacher-targets crop needs its teacher at each start: {e}") from None
        for run, kind in source.members:
            member = load_trained_model(run, kind)
            if member.feature_config != feature_config:
                raise FatError(
                    f"--teacher {run}: learned on other features ({member.feature_config}) than "
                    f"the student's store ({feature_config}); crop targets need the same"
                )
            if tuple(member.vocabulary) != tuple(vocabulary):
                raise FatError(f"--teacher {run}: its classes are not the student's")
            members.append(member)
    if len({m.single_label for m in members}) > 1:
        raise FatError("--teacher: mixes softmax and sigmoid models; give models of one kind")
    return CropTeacher(members, normalizer, device, temperature, weight, compiled)
