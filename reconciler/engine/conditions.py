"""Status conditions, set through one set of helpers (as Flux's `runtime/conditions`).

Conventions (Kubernetes API conventions, Flux): `Ready` is always present (True, False or
Unknown); `Reconciling` and `Stalled` are "abnormal-true" and exist only while True;
`Drifted` is present while a hand edit is detected. Every condition carries the
`observedGeneration` it was computed for, and `lastTransitionTime` changes only when the
status does. Functions take a tuple of conditions and return a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from reconciler.models import Condition, ConditionStatus
from reconciler.structs.runs import Outcome, RunResult

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DRIFTED = "Drifted"

Conditions = tuple[Condition, ...]


def get(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    now: datetime | None = None,
) -> Conditions:
    """Set one condition, keeping its transition time when the status is unchanged."""
    now = now or datetime.now(UTC)
    previous = get(conditions, type_)
    since = previous.last_transition_time if previous and previous.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        last_transition_time=since,
        observed_generation=generation,
    )
    kept = [c for c in conditions if c.type != type_]
    return tuple(sorted([*kept, new], key=lambda c: (c.type != READY, c.type)))


def remove(conditions: Sequence[Condition], type_: str) -> Conditions:
    return tuple(c for c in conditions if c.type != type_)


def mark_reconciling(
    conditions: Sequence[Condition], message: str, *, generation: int | None = None,
    now: datetime | None = None,
) -> Conditions:
    """A run started: Reconciling=True, Ready=Unknown (Stalled is cleared)."""
    out = set_condition(conditions, RECONCILING, ConditionStatus.TRUE, "Progressing", message,
                        generation=generation, now=now)
    out = remove(out, STALLED)
    return set_condition(out, READY, ConditionStatus.UNKNOWN, "Progressing", message,
                         generation=generation, now=now)


def ready_for_outcome(outcome: Outcome, error: str | None) -> tuple[ConditionStatus, str]:
    """The Ready status and reason a run's outcome gives."""
    if outcome in (Outcome.SUCCEEDED, Outcome.NOOP):
        return ConditionStatus.TRUE, "ReconciliationSucceeded"
    if outcome in (Outcome.PLANNED, Outcome.RUNNING):
        return ConditionStatus.UNKNOWN, "DryRun" if outcome is Outcome.PLANNED else "Progressing"
    if outcome is Outcome.CANCELLED:  # cut short: the target is as it was, neither known good nor bad
        return ConditionStatus.UNKNOWN, "Cancelled"
    return ConditionStatus.FALSE, "GuardAborted" if outcome is Outcome.ABORTED else "ReconciliationFailed"


def from_result(
    conditions: Sequence[Condition], result: RunResult, *, generation: int | None = None,
    now: datetime | None = None,
) -> Conditions:
    """The conditions after a run: Ready from its outcome, Reconciling removed. A dry run
    leaves them as they were: only real reconciliations move conditions (as in Flux)."""
    now = now or result.finished_at
    out = remove(conditions, RECONCILING)
    if result.dry_run:
        return out
    if result.drift:
        shown = ", ".join(result.drift[:5]) + (" …" if len(result.drift) > 5 else "")
        out = set_condition(out, DRIFTED, ConditionStatus.TRUE, "DriftDetected",
                            f"{len(result.drift)} key(s) changed outside the reconciler: {shown}",
                            generation=generation, now=now)
    elif result.reverted:
        # A hand edit undone is still news for that run: the condition says so, with its own
        # reason, and the next run that finds nothing to revert removes it.
        shown = ", ".join(result.reverted[:5]) + (" …" if len(result.reverted) > 5 else "")
        out = set_condition(out, DRIFTED, ConditionStatus.TRUE, "Reverted",
                            f"{len(result.reverted)} key(s) changed outside the reconciler were put "
                            f"back to the spec: {shown}", generation=generation, now=now)
    elif result.outcome in (Outcome.SUCCEEDED, Outcome.NOOP, Outcome.PLANNED):
        out = remove(out, DRIFTED)
    summary = result.counts.summary()
    status, reason = ready_for_outcome(result.outcome, result.error)
    if status is ConditionStatus.TRUE:
        out = remove(out, STALLED)
        return set_condition(out, READY, status, reason,
                             f"Applied revision {result.revision or '-'}: {summary}",
                             generation=generation, now=now)
    if status is ConditionStatus.UNKNOWN:
        cancelled = result.outcome is Outcome.CANCELLED
        message = (result.error or reason) if cancelled else f"Planned only: {summary}"
        return set_condition(out, READY, status, reason, message,
                             generation=generation, now=now)
    out = set_condition(out, READY, status, reason, result.error or reason,
                        generation=generation, now=now)
    if result.outcome is Outcome.ABORTED:
        # A guard trips on the same data again until a person looks: terminal, not retried.
        out = set_condition(out, STALLED, ConditionStatus.TRUE, reason, result.error or reason,
                            generation=generation, now=now)
    return out
