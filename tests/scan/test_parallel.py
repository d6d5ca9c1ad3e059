"""Fork-based work sharing: every chunk is scanned exactly once, failures are loud."""

from __future__ import annotations

import os

import pytest

from claudesec.scan import parallel

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="fork-based sharing is Linux-only")


def _claim_all(claim: parallel.Claim) -> tuple[int, list[int]]:
    taken: list[int] = []
    while (index := claim()) is not None:
        taken.append(index)
    return os.getpid(), taken


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_every_chunk_is_claimed_exactly_once(jobs: int) -> None:
    results = parallel.share(500, jobs, _claim_all)
    assert len(results) == jobs
    assert len({pid for pid, _ in results}) == jobs  # the parent works too
    claimed = [i for _, taken in results for i in taken]
    assert sorted(claimed) == list(range(500))


def test_no_more_processes_than_chunks() -> None:
    assert len(parallel.share(1, 4, _claim_all)) == 1
    assert parallel.share(0, 2, _claim_all) == [(os.getpid(), [])]


def test_a_failing_worker_is_an_error_not_a_silent_gap() -> None:
    parent = os.getpid()

    def work(claim: parallel.Claim) -> int:
        if os.getpid() != parent:
            raise OSError("disk on fire")
        count = 0
        while claim() is not None:
            count += 1
        return count

    with pytest.raises(parallel.WorkerFailed, match="disk on fire"):
        parallel.share(50, 2, work)


def test_a_worker_killed_outright_is_reported() -> None:
    parent = os.getpid()

    def work(claim: parallel.Claim) -> int:
        if os.getpid() != parent:
            os._exit(3)
        while claim() is not None:
            pass
        return 0

    with pytest.raises(parallel.WorkerFailed, match="died"):
        parallel.share(50, 2, work)


def test_too_many_chunks_is_refused() -> None:
    with pytest.raises(ValueError):
        parallel.share(parallel.MAX_CHUNKS + 1, 2, _claim_all)


def test_no_process_to_spare_means_the_parent_claims_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # fork's EAGAIN

    monkeypatch.setattr(os, "fork", refuse)
    results = parallel.share(300, 4, _claim_all)
    assert [pid for pid, _ in results] == [os.getpid()]
    assert sorted(results[0][1]) == list(range(300))
