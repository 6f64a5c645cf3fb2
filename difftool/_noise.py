"""Noise cancellation: a field differs for real only when Go-vs-native clearly beats Go-vs-Go.

With a control run (a second Go backend answering the same requests as the primary), every field
has two diff rates on each endpoint:

    candidate rate = samples where Go and native differ on the field / samples compared
    noise rate     = samples where Go and Go differ on the field     / samples compared with control

The thresholds are Diffy's defaults: a field is a *real* difference when the candidate rate exceeds
the noise rate by more than 20% of it (relative) **and** by more than 0.03 percentage points
(absolute). Two departures from Diffy, on purpose:

- a field the control never saw differ (noise rate 0, or no control at all) is real at any rate.
  Diffy's absolute floor would hide one mismatch in 10,000; for a cutover every unexplained byte
  counts;
- the relative test uses the noise rate's 95% Wilson upper bound, not its point estimate. With
  few samples (a scripted scenario sends a step a handful of times) a timestamp that happened to
  tick in 2 of 3 Go-vs-Go samples and 3 of 3 Go-vs-native ones is not evidence of anything; with
  thousands of samples the bound converges to the rate and the rule is Diffy's.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["NoiseThresholds", "DIFFY_DEFAULTS", "classify_field", "wilson_upper"]


@dataclasses.dataclass(frozen=True, slots=True)
class NoiseThresholds:
    relative: float = 0.20  # candidate rate must exceed noise rate * (1 + relative)
    absolute: float = 0.0003  # ... and noise rate + absolute (0.03 percentage points)


DIFFY_DEFAULTS = NoiseThresholds()


_Z = 1.96  # 95%


def wilson_upper(k: int, n: int, z: float = _Z) -> float:
    """Upper bound of the Wilson score interval for k successes in n trials."""
    if n <= 0:
        return 1.0
    p = k / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z2 / n))


def classify_field(
    candidate_diffs: int, compared: int, noise_diffs: int, control_compared: int,
    thresholds: NoiseThresholds = DIFFY_DEFAULTS,
) -> bool:
    """True when the field's differences are noise (explained by Go-vs-Go), False when real."""
    if noise_diffs <= 0 or control_compared <= 0 or compared <= 0:
        return False
    candidate_rate = candidate_diffs / compared
    noise_rate = noise_diffs / control_compared
    real = (
        candidate_rate > wilson_upper(noise_diffs, control_compared) * (1.0 + thresholds.relative)
        and candidate_rate - noise_rate > thresholds.absolute
    )
    return not real
