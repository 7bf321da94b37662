"""Voting on scripted candidates: python -m pytest tests/test_voting.py -q"""

import json

import pytest

from arcvdm.augment import IDENTITY, Transform
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid
from arcvdm.voting import Candidate, vote

A, B, C, D = (Grid([[v]]) for v in (1, 2, 3, 4))
ROT = Transform(1)
SWAP = Transform(0, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))


def cand(grid, transform=ROT, step=300, seed=0):
    return Candidate(grid=grid, transform=transform, step=step, seed=seed)


def test_majority_wins_and_counts_are_ranked():
    result = vote([cand(B), cand(A), cand(A, IDENTITY), cand(C), cand(A, step=600), cand(C)], k=2)
    assert result.attempts == [A, C]
    assert [(e["grid"], e["count"]) for e in result.counts] == [([[1]], 3), ([[3]], 2), ([[2]], 1)]
    assert result.counts[0] == {"grid": [[1]], "count": 3, "identity_votes": 1, "last_step": 600}
    assert result.undecodable == 0
    json.dumps(result.counts)  # goes into the problem file as is


def test_tie_goes_to_the_untransformed_view_before_the_later_checkpoint():
    result = vote([cand(A, ROT, step=600), cand(A, SWAP, step=600), cand(B, IDENTITY, step=300), cand(B, ROT, step=300)], k=1)
    assert result.attempts == [B]
    assert [e["identity_votes"] for e in result.counts] == [1, 0]


def test_then_the_later_checkpoint_then_the_first_seen():
    assert vote([cand(A, step=300), cand(B, step=600)], k=1).attempts == [B]
    assert vote([cand(B, step=600), cand(A, step=300)], k=1).attempts == [B]
    assert vote([cand(A), cand(B)], k=2).attempts == [A, B]
    assert vote([cand(B), cand(A)], k=2).attempts == [B, A]


def test_fewer_distinct_grids_than_k_pads_with_none():
    result = vote([cand(A), cand(A, seed=1)], k=3)
    assert result.attempts == [A, None, None]


def test_undecodable_candidates_never_win():
    result = vote([cand(None), cand(None, IDENTITY), cand(None), cand(D)], k=2)
    assert result.attempts == [D, None] and result.undecodable == 3
    assert [e["grid"] for e in result.counts] == [[[4]]]


def test_all_undecodable_or_no_candidates():
    assert vote([cand(None), cand(None)], k=2).attempts == [None, None]
    empty = vote([], k=2)
    assert empty.attempts == [None, None] and empty.counts == [] and empty.undecodable == 0


def test_k_must_be_positive():
    with pytest.raises(ArcvdmError, match="k = 0"):
        vote([cand(A)], k=0)
