"""tools/demo.py's summary: the trade-off line under its table."""
from e2e_utils import load_script

demo = load_script('tools/demo.py', 'demo')


def test_the_tradeoff_lines_say_what_each_rollback_trades():
    """The demo's committed detection numbers (one seed): plain 65.2 / 24.9,
    olor 63.1 / 19.3, max=0.1 50.0 / 40.9, drifts 0.147 / 0.093 / 0.021."""
    rows = [
        dict(model='pretrained (upstream)', drift=0.0, up_bbox=59.0),
        dict(
            model='fine-tuned: plain',
            drift=0.147,
            down_bbox=65.2,
            up_bbox=24.9),
        dict(
            model='fine-tuned: olor',
            drift=0.093,
            down_bbox=63.1,
            up_bbox=19.3),
        dict(
            model='fine-tuned: olor max=0.1',
            drift=0.021,
            down_bbox=50.0,
            up_bbox=40.9),
    ]

    class Part:
        metrics = {'bbox': 'coco/bbox_mAP'}

    lines = demo.tradeoff_lines(Part, rows)
    assert lines == [
        '- rollback_max=0.01 (config) vs plain: downstream bbox -2.1, '
        "retention -5.6; the backbone drifted 63% as far as plain's.",
        '- rollback_max=0.1 vs plain: downstream bbox -15.2, retention '
        "+16.0; the backbone drifted 14% as far as plain's.",
    ]


def test_the_default_run_has_the_strong_rollback_row():
    assert demo.parse_args([]).olor_max == [0.1]
    assert demo.parse_args(['--olor-max']).olor_max == []
