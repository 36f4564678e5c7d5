"""olor_mm/tools/config_input.py: the check tools (print_layers,
smoke_train) read a config and say a misspelt OLOR key in one line."""
import pytest


@pytest.mark.parametrize('tool', ['print_layers', 'smoke_train'])
def test_check_tools_say_a_misspelt_olor_key_in_one_line(tool, tmp_path):
    """An upstream config (by its mmdet:: name) given the constructor and a
    misspelt OLOR key: one line naming the key and the right one, before
    any model is built or data generated."""
    import importlib
    main = importlib.import_module(f'olor_mm.tools.{tool}').main
    argv = [
        'mmdet::rtmdet/rtmdet-ins_s_8xb32-300e_coco.py', '--cfg-options',
        'optim_wrapper.constructor=LayerwiseRollbackConstructor',
        'optim_wrapper.paramwise_cfg.rollback_mx=0.1'
    ]
    if tool == 'smoke_train':
        argv += ['--work-dir', str(tmp_path / 'smoke')]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    said = str(stop.value)
    assert said.startswith(f'{tool}: error: ') and '\n' not in said
    assert "'rollback_mx' (did you mean 'rollback_max'?)" in said
    assert not (tmp_path / 'smoke' / 'data').exists()
