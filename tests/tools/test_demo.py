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


def test_the_table_is_a_markdown_table_of_the_formatted_cells():

    class Part:
        metrics = {'bbox mAP': 'coco/bbox_mAP', 'segm mAP': 'coco/segm_mAP'}

    rows = [
        dict(
            model='pretrained (upstream)',
            drift=0.0,
            train_s=301.4,
            **{
                'up_bbox mAP': 59.04,
                'up_segm mAP': 50.0
            }),
        dict(
            model='fine-tuned: olor max=0.1',
            drift=0.0214,
            train_s=95.6,
            **{
                'down_bbox mAP': 50.0,
                'down_segm mAP': 44.96,
                'up_bbox mAP': 40.94,
                'up_segm mAP': 35.0
            }),
    ]
    lines = demo.format_table(Part, rows).splitlines()

    def cells(line):
        assert line.startswith('|') and line.endswith('|')
        return [c.strip() for c in line[1:-1].split('|')]

    assert cells(lines[0]) == [
        'model', 'downstream bbox mAP', 'downstream segm mAP',
        'upstream bbox mAP (retention)', 'upstream segm mAP (retention)',
        'backbone drift', 'train time'
    ]
    assert set(''.join(cells(lines[1]))) <= set('-:')  # the header rule
    assert len(cells(lines[1])) == 7
    assert [cells(line) for line in lines[2:]] == [
        ['pretrained (upstream)', '-', '-', '59.0', '50.0', '0.000', '301 s'],
        [
            'fine-tuned: olor max=0.1', '50.0', '45.0', '40.9', '35.0',
            '0.021', '96 s'
        ],
    ]
