"""Every float flag of run, record, teleop and eval: NaN, infinity and out-of-range values are one
line and exit 2 before any hardware is touched (`run --duration nan` used to run two ticks and
exit 0; `record --episode-seconds nan` gave a traceback)."""

import pytest

from edgevla.cli import main

ARMS = ["--leader-port", "/dev/null", "--follower-port", "/dev/null"]
RUN = ["run", "--robot", "so101_follower", "--port", "/dev/null", "--policy", "p.npz"]
RECORD = ["record", *ARMS, "--dataset", "ds", "--task", "t", "--no-keyboard"]
EVAL = ["eval", "--policy", "p.npz"]

CASES = [
    (RUN, "--duration", "nan"),
    (RUN, "--duration", "-1"),
    (RUN, "--fps", "inf"),
    (RUN, "--fps", "5000"),
    (RUN, "--stats-every", "nan"),
    (RUN, "--max-slow-seconds", "0"),
    (RUN, "--max-starved-seconds", "nan"),
    (RUN, "--max-failed-ticks", "0"),
    (RECORD, "--episode-seconds", "nan"),
    (RECORD, "--reset-seconds", "-inf"),
    (RECORD, "--camera-timeout", "nan"),
    (["teleop", *ARMS], "--fps", "nan"),
    (["teleop", *ARMS], "--duration", "inf"),
    (EVAL, "--max-seconds", "nan"),
    (EVAL, "--fps", "-inf"),
    (EVAL, "--push", "nan"),
    (RUN, "--vlm-hz", "nan"),
    (RUN, "--vlm-hz", "0"),
    ([*RUN, "--vlm-hz", "2"], "--max-context-age", "inf"),
    (EVAL, "--vlm-hz", "-inf"),
    ([*EVAL, "--prefix-every", "3"], "--max-context-age", "0"),
    (["sim", "demos", "--dataset", "ds"], "--episode-seconds", "nan"),
]


@pytest.mark.parametrize(("command", "flag", "value"), CASES, ids=[f"{c[0]}{f}={v}" for c, f, v in CASES])
def test_a_bad_number_is_one_line_naming_the_flag(command, flag, value, capsys):
    assert main([*command, f"{flag}={value}"]) == 2  # "=": argparse takes a bare -inf for a flag
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"error: {flag} must be a finite number" in err, err
