"""The front measures of olor_mm/tools/fronts.py against hand-computed values
and a brute-force count of the dominated area."""
import itertools
import random

import pytest

from olor_mm.tools.fronts import (dominance, family_points, hypervolume,
                                  on_pooled_front, pareto)

# (downstream, retention): three on the front, two under it
POINTS = [(1, 5), (2, 4), (3, 1), (1, 3), (2, 2)]


def test_pareto_keeps_the_points_nothing_beats_in_both():
    assert pareto(POINTS) == [(1, 5), (2, 4), (3, 1)]
    # a tie on one axis: the point lower on the other is dominated
    assert pareto([(2, 4), (2, 3), (1, 4)]) == [(2, 4)]


def test_hypervolume_is_the_union_of_the_rectangles_by_hand():
    # from the right: 3 x 1, then 2 x (4 - 1), then 1 x (5 - 4)
    assert hypervolume(POINTS) == 10
    # dominated points add nothing; a reference point shifts the origin
    assert hypervolume([(1, 5), (2, 4), (3, 1)]) == 10
    # from (1, 1): only (2, 4) reaches past it on both axes
    assert hypervolume(POINTS, ref=(1, 1)) == (2 - 1) * (4 - 1)
    assert hypervolume([]) == 0


def _grid_area(points, size):
    """Unit cells [i, i+1] x [j, j+1] some point dominates, counted."""
    return sum(
        any(x >= i + 1 and y >= j + 1 for x, y in points)
        for i, j in itertools.product(range(size), repeat=2))


@pytest.mark.parametrize('seed', range(5))
def test_hypervolume_matches_a_brute_force_count(seed):
    rng = random.Random(seed)
    points = [(rng.randint(0, 12), rng.randint(0, 12)) for _ in range(8)]
    assert hypervolume(points) == _grid_area(points, 12)


def test_dominance_per_seed_by_hand():
    # seed 0: hv(a) = 2 * 2 = 4, hv(b) = 3 * 0.5 + 1 * 0.5 = 2; (2, 2)
    # dominates b's (1, 1), not (3, 0.5). Seed 1: equal fronts, difference
    # 0, and a point does not dominate its equal.
    a = {0: [(2, 2)], 1: [(1, 1)]}
    b = {0: [(1, 1), (3, 0.5)], 1: [(1, 1)]}
    out = dominance(a, b)
    assert out['hv_diff_mean'] == pytest.approx(1.0)
    assert out['hv_diff_std'] == pytest.approx(2**0.5)  # stdev of (2, 0)
    assert out['dominated_share'] == pytest.approx(1 / 3)
    # and the other way round: nothing of a is dominated by b
    back = dominance(b, a)
    assert back['hv_diff_mean'] == pytest.approx(-1.0)
    assert back['dominated_share'] == 0


def test_pooled_front_counts_a_family_s_own_points_only():
    """Seed 0: plain (70, 30) is every rollback family's zero end and on the
    pooled front; OLOR's own (60, 50) is beaten by EWC's (62, 55): OLOR is
    on the front only through plain, which does not count. Seed 1: OLOR's
    (65, 52) is beaten by nothing."""

    def r(family, method, seed, down, up, param=None):
        return dict(
            setting='s',
            family=family,
            method=method,
            seed=seed,
            param=param,
            down_score=down,
            up_score=up)

    results = [
        r('plain', 'plain', 0, 70, 30),
        r('plain', 'plain', 1, 70, 30),
        r('OLOR', 'olor 0.1', 0, 60, 50, 0.1),
        r('OLOR', 'olor 0.1', 1, 65, 52, 0.1),
        r('EWC', 'ewc 1', 0, 62, 55, 1.0),
        r('EWC', 'ewc 1', 1, 62, 55, 1.0)
    ]
    fam = {f: family_points(results, 's', f, 'none') for f in ('OLOR', 'EWC')}
    assert on_pooled_front(fam) == {'OLOR': '1 of 2', 'EWC': '2 of 2'}
