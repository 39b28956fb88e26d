"""The AED example SyncJobs follow the design's hybrid plan (issue 17, item 7).

Option C of the AED design: an incremental run on weekdays at 04:00 KST, a full run on
Sundays at 02:00 KST; a failed run retried after 1 s, 2 s and 4 s, never more than an hour
late. Checked with the scheduler's own timing over one real week, for both example files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ruamel.yaml import YAML

from reconciler.models import Mode, SyncJob
from reconciler.schedule.timing import Timing

REPO = Path(__file__).resolve().parents[2]
SEOUL = ZoneInfo("Asia/Seoul")
FILES = [REPO / "specs" / "aed.yaml", REPO / "examples" / "kubernetes" / "resources" / "syncjobs.yaml"]


def aed_jobs(path: Path) -> dict[str, SyncJob]:
    docs = [d for d in YAML(typ="safe", pure=True).load_all(path.read_text(encoding="utf-8")) if d]
    jobs = [SyncJob.model_validate(d) for d in docs if d.get("kind") == "SyncJob"]
    return {j.metadata.name: j for j in jobs if j.spec.target_ref.kind == "AedSourceBinding"}


def week_of_runs(job: SyncJob) -> list[str]:
    timing = Timing.of(job.spec, key=job.metadata.name)
    at = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # Monday 2 March 2026, 00:00 in Seoul
    runs = []
    while (at := timing.following(at)) < datetime(2026, 3, 8, 15, 0, tzinfo=UTC):
        runs.append(at.astimezone(SEOUL).strftime("%a %H:%M"))
    return runs


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_weekday_incremental_at_4_and_sunday_full_at_2_seoul_time(path: Path) -> None:
    jobs = aed_jobs(path)
    incremental = [j for j in jobs.values() if j.spec.mode is Mode.INCREMENTAL]
    full = [j for j in jobs.values() if j.spec.mode is Mode.FULL]
    assert len(incremental) == 1 and len(full) == 1
    assert week_of_runs(incremental[0]) == ["Mon 04:00", "Tue 04:00", "Wed 04:00", "Thu 04:00", "Fri 04:00"]
    assert week_of_runs(full[0]) == ["Sun 02:00"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
def test_retries_after_1_2_and_4_seconds_with_a_one_hour_ceiling(path: Path) -> None:
    for job in aed_jobs(path).values():
        retry = job.spec.retry
        delays = [min(retry.backoff * 2 ** n, retry.max_backoff) for n in range(retry.limit)]
        assert delays == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)], job.metadata.name
        assert retry.max_backoff == timedelta(hours=1)
        assert job.spec.starting_deadline_seconds == 3600
