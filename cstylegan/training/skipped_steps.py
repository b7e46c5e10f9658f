"""Counting the optimiser steps skipped for a non-finite loss without waiting for the device.

`phase_step` does not ask the host whether a loss was finite (that read would stall a GPU
every phase); it multiplies the gradients by the device-side flag instead. This keeps the
counts on the device too, and the loop reads them with one sync every few minibatches.
"""

import torch


class SkippedSteps:
    def __init__(self, device):
        self.streak = torch.zeros([], device=device)  # minibatches in a row, up to now, with a skipped step
        self.longest = torch.zeros([], device=device)  # the longest such streak since the last read
        self.skipped = torch.zeros([], device=device)  # minibatches with a skipped step since the last read
        self.skipped_before = 0  # the previous read's count: a run of bad reads warns once

    def record(self, stepped: torch.Tensor) -> None:
        """`stepped`: 1 if every phase of this minibatch stepped, 0 if any skipped (a 0-dim tensor)."""
        bad = 1 - stepped
        self.streak = (self.streak + 1) * bad
        self.longest = torch.maximum(self.longest, self.streak)
        self.skipped = self.skipped + bad

    def read(self) -> tuple:
        """(minibatches skipped, the longest streak of them) since the last read, and whether
        skipping starts anew with this read (the previous one had none); one device sync."""
        skipped, longest = (int(v) for v in torch.stack([self.skipped, self.longest]).tolist())
        self.skipped = torch.zeros_like(self.skipped)
        self.longest = self.streak.clone()
        starts = skipped > 0 and self.skipped_before == 0
        self.skipped_before = skipped
        return skipped, longest, starts
