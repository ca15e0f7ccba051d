"""Wall-clock training budget: how many steps fit in ``time_budget_min`` minutes.

The learning-rate schedule (constant, then linear to zero) needs the run's length in steps before
the decay starts. With a time budget that length is estimated once, after a short probe: the
measured seconds per step, plus the per-epoch pairing pass amortised over an epoch's steps, and a
reserve for the end of training (per-domain filters, saving). While the learning rate is still
constant the length is re-fitted every tenth of the budget from the speed measured since the last
fit, so a probe that ran slow (or fast) on a shared machine does not waste (or overrun) the budget;
once the decay has begun the length is final (and checkpointed, so ``--resume`` keeps it). Training
also stops at once when the budget is spent, whatever the estimate said, so a slower machine can
never overrun it by more than one step.

The step count of a budgeted run depends on the machine's speed: for runs that must be compared
step for step (Table 1's ablations) use ``max_steps`` instead, which is exact and reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PROBE_STEPS = 8               # timed steps (after the first) before the length is fixed
PROBE_BUDGET_FRACTION = 0.1   # ... or fewer, when they would take more than this share of the budget
REFIT_BUDGET_FRACTION = 0.1   # re-fit the length after each such share of the budget (constant-lr phase only)


@dataclass
class StepBudget:
    """``budget_s`` of wall-clock time for at most ``max_total_steps`` steps."""

    budget_s: float
    max_total_steps: int
    fixed_total: int | None = None   # the step count of the latest fit (None during the probe)
    probe_start_step: int | None = None
    probe_start_s: float = 0.0
    fit_step: int = 0             # where the last fit was made; the next one measures the speed from here
    fit_s: float = 0.0

    def exhausted(self, elapsed_s: float) -> bool:
        return elapsed_s >= self.budget_s

    def observe(self, step: int, elapsed_s: float, pairing_s: float, steps_per_epoch: int,
                may_refit: bool = False) -> int | None:
        """Called after every step; returns the run's total step count once it is decided, else None.

        ``elapsed_s`` counts from the start of training (pairing passes included); ``pairing_s`` is
        the duration of one pairing pass (describe every image, pair, sample negatives).
        ``may_refit``: the caller's schedule can still take a new length (its decay has not begun).
        """
        if self.fixed_total is not None:
            if may_refit and elapsed_s - self.fit_s >= REFIT_BUDGET_FRACTION * self.budget_s and step > self.fit_step:
                # the window's pace already includes the pairing passes that fell in it
                pace = (elapsed_s - self.fit_s) / (step - self.fit_step)
                self._fit(step, elapsed_s, self.estimate_total(step, elapsed_s, pace, pairing_s))
            return self.fixed_total
        if self.probe_start_step is None:  # the first step pays for warm-up: time from its end
            self.probe_start_step, self.probe_start_s = step, elapsed_s
            return None
        probed = step - self.probe_start_step
        probe_s = elapsed_s - self.probe_start_s
        if probed < PROBE_STEPS and probe_s < PROBE_BUDGET_FRACTION * self.budget_s:
            return None
        per_step = probe_s / probed + pairing_s / max(1, steps_per_epoch)  # pairing amortised over an epoch
        self._fit(step, elapsed_s, self.estimate_total(step, elapsed_s, per_step, pairing_s))
        return self.fixed_total

    def _fit(self, step: int, elapsed_s: float, total: int) -> None:
        self.fixed_total, self.fit_step, self.fit_s = total, step, elapsed_s

    def estimate_total(self, step: int, elapsed_s: float, per_step_s: float, reserve_s: float) -> int:
        """``step`` plus the steps that fit in the time left after ``reserve_s`` (about one pairing pass,
        for finishing: per-domain filters, saving), never more than ``max_total_steps``."""
        left = self.budget_s - elapsed_s - reserve_s
        more = math.floor(left / per_step_s) if per_step_s > 0 else self.max_total_steps
        return int(min(self.max_total_steps, max(step + 1, step + more)))
