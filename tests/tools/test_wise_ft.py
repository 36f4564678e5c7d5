"""tools/wise_ft.py: the two ends and the new layers."""

import pytest
import torch

from olor_mm.tools.wise_ft import interpolate, main


def _states():
    g = torch.Generator().manual_seed(0)
    pre = {
        'backbone.w': torch.randn(3, 3, generator=g),
        'neck.b': torch.randn(3, generator=g),
        'head.fc_cls.weight': torch.randn(5, 3, generator=g)
    }  # old head
    ft = {
        k: v + torch.randn(v.shape, generator=g)
        for k, v in pre.items() if k != 'head.fc_cls.weight'
    }
    ft['head.fc_cls.weight'] = torch.randn(2, 3, generator=g)  # new shape
    ft['bn.num_batches_tracked'] = torch.tensor(7)  # integer buffer
    return pre, ft


def test_alpha_zero_is_the_pretrained_weights_on_the_shared_layers():
    pre, ft = _states()
    out, mixed, kept = interpolate(pre, ft, 0.0)
    assert (mixed, kept) == (2, 2)
    assert torch.equal(out['backbone.w'], pre['backbone.w'])
    assert torch.equal(out['neck.b'], pre['neck.b'])
    assert torch.equal(out['head.fc_cls.weight'], ft['head.fc_cls.weight'])
    assert out['bn.num_batches_tracked'] == 7


def test_alpha_one_is_the_fine_tuned_model():
    pre, ft = _states()
    out, _, _ = interpolate(pre, ft, 1.0)
    for k in ft:
        assert torch.equal(out[k], ft[k]), k


def test_alpha_between_is_the_closed_form():
    pre, ft = _states()
    out, _, _ = interpolate(pre, ft, 0.25)
    torch.testing.assert_close(
        out['backbone.w'], 0.75 * pre['backbone.w'] + 0.25 * ft['backbone.w'])


def test_the_command_writes_a_checkpoint(tmp_path):
    pre, ft = _states()
    torch.save(dict(state_dict=pre), tmp_path / 'pre.pth')
    torch.save(dict(state_dict=ft), tmp_path / 'ft.pth')
    main([
        str(tmp_path / 'pre.pth'),
        str(tmp_path / 'ft.pth'), '--alpha', '0.5', '--out',
        str(tmp_path / 'wise.pth')
    ])
    saved = torch.load(tmp_path / 'wise.pth', weights_only=False)
    assert saved['meta']['wise_ft']['alpha'] == 0.5
    torch.testing.assert_close(saved['state_dict']['neck.b'],
                               (pre['neck.b'] + ft['neck.b']) / 2)


@pytest.mark.parametrize('alpha', [-0.1, 1.5, float('nan')])
def test_alpha_outside_zero_one_is_refused(alpha):
    pre, ft = _states()
    with pytest.raises(ValueError, match='--alpha'):
        interpolate(pre, ft, alpha)


def test_unrelated_checkpoints_are_refused():
    with pytest.raises(ValueError, match='share no tensor'):
        interpolate({'a': torch.zeros(2)}, {'b': torch.zeros(2)}, 0.5)
