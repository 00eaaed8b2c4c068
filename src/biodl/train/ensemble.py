"""Ensembles: K networks of one architecture trained with different seeds, stored in one model
file, whose prediction is the mean of theirs (``biodl train --ensemble K``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    """``K`` members of one architecture; ``forward`` is the mean of the members' outputs.

    Outputs are averaged on the scale the networks produce them (logits for classifiers, values
    for regression), so everything downstream (probabilities, ISM, variant effects, thresholds)
    treats the ensemble as one network. Plain attributes of the architecture (``n_outputs``,
    ``seq_len``, flags such as ``padded_batches``) are read from the first member; its layers are
    not exposed, so code that looks for a network's layers (the fast ISM path, filter logos) does
    not mistake one member for the ensemble and falls back to the full forward pass.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def size(self) -> int:
        return len(self.members)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        out = self.members[0](*args, **kwargs)
        for m in self.members[1:]:
            out = out + m(*args, **kwargs)
        return out / len(self.members)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "members" or name.startswith("__"):
                raise
            members = self._modules.get("members")
            if members is None or not len(members):
                raise
            value = getattr(members[0], name)
            if isinstance(value, (nn.Module, torch.Tensor)):
                raise AttributeError(
                    f"{name!r} is a layer or tensor of each member; an Ensemble does not expose it"
                ) from None
            return value
