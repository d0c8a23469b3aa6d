"""The deployment node's settings (no heavy imports: the CLI reads them before loading a model)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NodeConfig:
    rate_hz: float = 100.0
    """Robot command rate (the plan is interpolated to it)."""
    plan_dt: float = 0.1
    """Seconds per plan step (the policy's control step)."""
    seconds: float = 10.0
    """Run time (the run also ends at success when the world reports it)."""
    lead: int | None = None
    """Plan steps between a request and the chunk switch (default: enough for the slowest of the
    last 20 inferences, ``node.lead_for``)."""
    delay_ms: float = 0.0
    """Injected inference delay (benchmarks: a slow network or GPU)."""
    source_timeout_s: float = 1.0
    """A request unanswered this long (or failed) makes the robot hold until a fresh chunk."""
    stop_on_success: bool = True
    reserve: bool = True
    """Follow the current chunk's reserve (the policy's prediction past its plan) while the next
    chunk is late, instead of holding the arm still at the join (False: plan steps only)."""
    centre_targets: bool = True
    """Interpolate so that the command passes each plan target in the middle of its plan step (its
    mean over the step is the target, as under the simulator's zero-order hold that produced the
    training data); False: it reaches each target at the start of its step, half a step ahead."""
    join_blend: int = 3
    """Plan steps over which a new chunk's mismatch with the committed motion is spread
    (``chunks.blend_join``; 0: the chunk is executed as planned). Through the node on Push (two
    runs of 20 seeds per cell, +0/100/200/300 ms) 3 scored 0.73/0.48/0.50/0.43 against
    0.73/0.40/0.38/0.28 without, with joins no larger than steps inside chunks (BENCHMARKS.md)."""

    def __post_init__(self) -> None:
        if not 1 <= self.rate_hz <= 2000 or not 0.005 <= self.plan_dt <= 1.0:
            raise ValueError(f"rate_hz must lie in [1, 2000] and plan_dt in [0.005, 1], "
                             f"got {self.rate_hz}, {self.plan_dt}")
        if self.rate_hz * self.plan_dt < 1:
            raise ValueError("the robot rate must be at least one command per plan step")
        if self.seconds <= 0 or self.delay_ms < 0 or self.source_timeout_s <= 0:
            raise ValueError("seconds and source_timeout_s must be positive, delay_ms >= 0")
        if not 0 <= self.join_blend <= 8:
            raise ValueError(f"join_blend must lie in [0, 8] plan steps, got {self.join_blend}")
        if self.lead is not None and self.lead < 1:
            raise ValueError(f"lead must be >= 1 plan step, got {self.lead}")
