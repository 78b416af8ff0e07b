"""What several test modules share."""

import pytest


def run_fails(main, argv, capsys):
    """Run a script's main, expect a clean user error; return its one line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err
