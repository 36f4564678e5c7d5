"""Eq. 8/9 (lam_i per layer) and the multi-tensor lerp, against hand values."""
import pytest
import torch

from olor_mm.core.rollback import (group_by_device_and_dtype,
                                   layerwise_rollback, rollback_)


@pytest.mark.parametrize(
    'iota1,iota2,gamma,n,expected',
    [
        # linear decay, n = 4: 0.01 * (1, .75, .5, .25, 0)
        (0.01, 0.0, 1.0, 4, [0.01, 0.0075, 0.005, 0.0025, 0.0]),
        # with a floor: 0.002 + (1 - i/2) * 0.008
        (0.01, 0.002, 1.0, 2, [0.01, 0.006, 0.002]),
        # gamma = 2: 0.1 * (1 - i/4)^2 = 0.1 * (1, 9/16, 1/4, 1/16, 0)
        (0.1, 0.0, 2.0, 4, [0.1, 0.05625, 0.025, 0.00625, 0.0]),
        # gamma = 0.5 (non-integer; deepest layer stays real): sqrt(1 - i/4)
        (0.1, 0.0, 0.5, 4,
         [0.1, 0.1 * 0.75**0.5, 0.1 * 0.5**0.5, 0.1 * 0.5, 0.0]),
        # gamma = 0: uniform iota1, the deepest layer included
        (0.03, 0.01, 0.0, 3, [0.03, 0.03, 0.03, 0.03]),
        # a single layer (n = 0): iota1
        (0.05, 0.01, 1.0, 0, [0.05]),
    ])
def test_layerwise_rollback_matches_eq9(iota1, iota2, gamma, n, expected):
    got = [layerwise_rollback(i, n, iota1, iota2, gamma) for i in range(n + 1)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(isinstance(v, float) for v in got)


def test_layerwise_rollback_is_monotone_in_depth():
    lams = [layerwise_rollback(i, 16, 0.01, 0.001, 1.7) for i in range(17)]
    assert lams[0] == 0.01 and lams[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(lams, lams[1:]))


@pytest.mark.parametrize('kwargs,key', [
    (dict(iota1=1.5, iota2=0.0, gamma=1.0), 'rollback_max'),
    (dict(iota1=0.1, iota2=-0.1, gamma=1.0), 'rollback_min'),
    (dict(iota1=0.1, iota2=0.2, gamma=1.0), 'rollback_min=0.2 > rollback_max'),
    (dict(iota1=0.1, iota2=0.0, gamma=-1.0), 'rollback_power'),
    (dict(iota1=0.1, iota2=0.0, gamma=float('nan')), 'rollback_power'),
])
def test_bad_hyper_parameters_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        layerwise_rollback(0, 2, **kwargs)


def test_layer_index_out_of_range():
    with pytest.raises(ValueError, match='outside'):
        layerwise_rollback(3, 2, 0.1, 0.0, 1.0)


def test_rollback_lerp_closed_form():
    g = torch.Generator().manual_seed(0)
    p = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(3)]
    a = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(3)]
    w = [0.0, 0.3, 1.0]
    expected = [pi + wi * (ai - pi) for pi, ai, wi in zip(p, a, w)]
    before0 = p[0].clone()
    rollback_(p, a, w)
    assert torch.equal(p[0], before0)  # w = 0: bit for bit
    torch.testing.assert_close(p[1], expected[1], rtol=0, atol=1e-15)
    assert torch.equal(p[2], a[2])  # w = 1: exactly theta0


def test_rollback_uniform_weight():
    p = [torch.ones(3), torch.zeros(2)]
    rollback_(p, [torch.zeros(3), torch.ones(2)], [0.25, 0.25])
    assert torch.equal(p[0], torch.full((3, ), 0.75))
    assert torch.equal(p[1], torch.full((2, ), 0.25))


def test_group_by_device_and_dtype_keeps_order():
    ts = [
        torch.zeros(1),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1),
        torch.zeros(1, dtype=torch.bfloat16)
    ]
    buckets = group_by_device_and_dtype(ts)
    cpu = torch.device('cpu')
    assert buckets == {
        (cpu, torch.float32): [0, 2],
        (cpu, torch.float64): [1],
        (cpu, torch.bfloat16): [3]
    }


def test_rollback_with_narrower_anchors_closed_form():
    g = torch.Generator().manual_seed(0)
    p = [torch.randn(7, generator=g) for _ in range(2)]
    a = [torch.randn(7, generator=g).bfloat16() for _ in range(2)]
    w = [0.1, 0.6]
    expected = [pi + wi * (ai.float() - pi) for pi, ai, wi in zip(p, a, w)]
    rollback_(p, a, w)
    assert all(t.dtype == torch.float32 for t in p)
    for got, exp in zip(p, expected):
        torch.testing.assert_close(got, exp, rtol=0, atol=1e-6)
