"""Checkpoint selection, every branch, on scripted checkpoints: python -m pytest tests/test_selection.py -q"""

import itertools

import pytest

from arcvdm.selection import Checkpoint, decided, priority, schedule_steps, select
from arcvdm.tasks import Grid

A, B, C, D, E = (Grid([[v]]) for v in range(1, 6))


def ckpts(*rows, steps=None):
    """rows: (solved: bool, test prediction) per checkpoint, one test input; steps 100, 200, ..."""
    steps = steps or [100 * (i + 1) for i in range(len(rows))]
    return [Checkpoint(step=s, train_correct=(solved, True), test=(pred,)) for s, (solved, pred) in zip(steps, rows)]


def attempts(cps, k=2, **kw):
    return select(cps, k, **kw).attempts[0]


def test_solved_at_first_checkpoint_takes_it_and_the_next():
    s = select(ckpts((True, A), (False, B), (False, C), (True, D)), 2)
    assert s.attempts == [[A, B]]
    assert s.triggered_at == 100 and s.steps == (100, 200) and s.attempt_steps == [[100, 200]]


def test_solved_in_the_middle():
    s = select(ckpts((False, A), (False, B), (True, C), (True, D), (False, E)), 2)
    assert s.attempts == [[C, D]] and s.triggered_at == 300 and s.steps == (300, 400)


def test_solved_at_last_checkpoint_fills_with_the_one_before():
    s = select(ckpts((False, A), (False, B), (True, C)), 2)
    assert s.attempts == [[C, B]] and s.steps == (300, 200) and s.triggered_at == 300


def test_never_solved_takes_the_last_k():
    s = select(ckpts((False, A), (False, B), (False, C), (False, D)), 2)
    assert s.attempts == [[C, D]] and s.triggered_at is None and s.steps == (300, 400)
    assert s.to_json()["solved_train_at"] is None


def test_fewer_than_k_left_with_k3():
    cps = ckpts((False, A), (False, B), (False, C), (True, D), (False, E))
    s = select(cps, 3)
    assert s.attempts == [[D, E, C]] and s.steps == (400, 500, 300)


def test_k3_solved_early_takes_three_consecutive():
    assert attempts(ckpts((True, A), (True, B), (False, C), (False, D)), 3) == [A, B, C]


def test_a_train_pair_wrong_is_not_solved():
    cps = [Checkpoint(100, (True, False), (A,)), Checkpoint(200, (True, True), (B,)), Checkpoint(300, (False, False), (C,))]
    assert select(cps, 2).attempts == [[B, C]]


def test_duplicate_is_replaced_by_an_earlier_distinct_prediction():
    cps = ckpts((False, C), (False, B), (True, A), (True, A), (True, D))
    s = select(cps, 2)
    assert s.attempts == [[A, B]] and s.attempt_steps == [[300, 200]]
    assert select(cps, 2, distinct=False).attempts == [[A, A]]


def test_undecodable_is_skipped_and_missing_attempts_are_none():
    cps = ckpts((False, None), (True, None), (False, A))
    assert attempts(cps) == [A, None]
    assert select(cps, 2).attempt_steps == [[300, None]]
    assert select(cps, 2, distinct=False).attempts == [[None, A]]
    assert attempts(ckpts((True, None), (True, None))) == [None, None]


def test_fewer_checkpoints_than_k():
    assert attempts(ckpts((False, A)), 3) == [A, None, None]
    assert select(ckpts((False, A)), 3, distinct=False).attempts == [[A, None, None]]


def test_several_test_inputs_are_selected_independently():
    cps = [Checkpoint(100, (True,), (A, B)), Checkpoint(200, (True,), (A, C)), Checkpoint(300, (True,), (D, D))]
    # later checkpoints never fill a duplicate: D at 300 is outside the window and after it
    assert select(cps, 2).attempts == [[A, None], [B, C]]


def test_priority_lists():
    assert priority(6, 2, 1) == [1, 2, 0]
    assert priority(6, 2, 5) == [5, 4, 3, 2, 1, 0]
    assert priority(6, 3, None) == [3, 4, 5, 2, 1, 0]
    assert priority(6, 2, 3, "leave-one-out") == [2, 3, 1, 0]


def test_schedule_steps():
    assert schedule_steps(1800, 300) == [300, 600, 900, 1200, 1500, 1800]
    assert schedule_steps(50, 20) == [20, 40, 50]
    with pytest.raises(ValueError):
        schedule_steps(10, 0)


# ---- leave-one-out: the held-out pair rotates; exact success on it at two consecutive checkpoints fires the rule


def loo(*rows):
    """rows: (held-out pair solved, test prediction); two train pairs, held-out index rotating 0, 1, 0, ..."""
    out = []
    for i, (solved, pred) in enumerate(rows):
        held = i % 2
        correct = [False, False]  # the trained-on pairs are wrong: only the held-out one counts
        correct[held] = solved
        out.append(Checkpoint(100 * (i + 1), tuple(correct), (pred,), held_out=held))
    return out


def test_leave_one_out_fires_at_two_consecutive_held_out_successes():
    cps = loo((True, A), (False, B), (True, C), (True, D), (True, E))
    s = select(cps, 2, rule="leave-one-out")
    assert s.attempts == [[C, D]] and s.triggered_at == 400
    assert s.to_json() == {"rule": "leave-one-out", "k": 2, "solved_train_at": None, "solved_held_out_at": 400,
                           "steps": [300, 400], "attempt_steps": [[300, 400]]}
    assert decided(cps[:4], schedule_steps(500, 100), 2, "leave-one-out")
    assert not decided(cps[:3], schedule_steps(500, 100), 2, "leave-one-out")
    # the paper rule ignores held-out success here: no checkpoint solves every train pair
    assert select(cps, 2).attempts == [[D, E]]


def test_leave_one_out_k3_fills_backwards_and_falls_back():
    assert attempts(loo((False, A), (True, B), (True, C), (False, D)), 3, rule="leave-one-out") == [B, C, A]
    assert attempts(loo((True, A), (False, B), (True, C), (False, D)), 2, rule="leave-one-out") == [C, D]


# ---- decided: exact, checked by brute force over every continuation of every prefix

OUTCOMES = [(solved, pred) for solved in (False, True) for pred in (A, B, None)]
# continuations may also bring a grid no earlier checkpoint predicted
LATER = OUTCOMES + [(solved, E) for solved in (False, True)]


@pytest.mark.parametrize("distinct", [True, False])
@pytest.mark.parametrize("rule", ["paper", "leave-one-out"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_decided_is_exact_and_early_stopping_changes_nothing(k, rule, distinct):
    n = 4
    schedule = schedule_steps(400, 100)
    build = ckpts if rule == "paper" else loo
    for m in range(1, n + 1):
        for prefix in itertools.product(OUTCOMES, repeat=m):
            finals = {
                tuple(map(tuple, select(build(*prefix, *rest), k, rule=rule, distinct=distinct).attempts))
                for rest in itertools.product(LATER, repeat=n - m)
            }
            is_decided = decided(build(*prefix), schedule, k, rule)
            # decided exactly when every continuation gives the same attempts ...
            assert is_decided == (len(finals) == 1), (prefix, k, rule)
            if is_decided:
                # ... and then the early-stopped selection is the full schedule's
                early = select(build(*prefix), k, rule=rule, distinct=distinct)
                assert {tuple(map(tuple, early.attempts))} == finals


def test_decided_waits_for_the_window():
    schedule = schedule_steps(600, 100)
    cps = ckpts((False, A), (True, B), (False, C), (False, D))
    assert not decided(cps[:1], schedule, 2)
    assert not decided(cps[:2], schedule, 2)
    assert decided(cps[:3], schedule, 2)
    assert not decided(cps[:3], schedule, 3)
    assert decided(cps[:4], schedule, 3)
