"""When a steering acts (its schedule), and what the decoding loop tells a scheduled steerer at
each step (``StepControl``). At the bottom floor: it imports only torch, so the decoding loop
(``generation``) and the steerers (``steer``, ``act``) both read it without reaching each other.
"""

from __future__ import annotations

import torch

# When a steering acts, as its spec names it (``SteeringSpec.schedule``): Steerscope's settings,
# after the published finding that the language is chosen in the first answer tokens and that
# steering every token costs quality (see the README).
SCHEDULES = {
    "all": "every generated token",
    "window": "the first `window` generated tokens only",
    "fence": "until the answer's opening fence line (```lang) is written",
    "gated": "while the probe's probability that the answer is already in the target is below `gate`",
}


class StepControl:
    """What a scheduled steering needs from the decoding loop, which updates it before every
    forward pass: the step (0 at the prompt, t when token t is fed back) and which rows are
    still steered (a row leaves once its fence line is written, under ``schedule="fence"``).
    ``alive`` maps the pass's rows to the call's rows, once finished rows have left the batch."""

    def __init__(self, n_rows: int, steered: torch.Tensor | None = None):
        self.step = 0
        self.steered = torch.ones(n_rows, dtype=torch.bool) if steered is None else steered.clone()
        self.alive: torch.Tensor | None = None

    def rows(self) -> torch.Tensor:
        return self.steered if self.alive is None else self.steered[self.alive]
