"""Bad input, one table per test module: each row is a call that must fail
with its exception type and a message that names the key and says what to
do instead (docs/reliability.md, "Bad input")."""
import re

import pytest


def bad_input_cases(rows):
    """``pytest.mark.parametrize`` over rows ``(id, call, exception, key
    regex, fix regex)``, each row's id its pytest id."""
    return pytest.mark.parametrize(
        'call, error, key, fix', [r[1:] for r in rows],
        ids=[r[0] for r in rows])


def check_bad_input(call, error, key, fix):
    """``call()`` raises ``error`` with a message matching ``key`` and
    ``fix``."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert re.search(key, message), message
    assert re.search(fix, message), message
