"""Hosting: which kind of policy a source is, where it runs, and how it is put to work on a robot
(above model/ and export/, below cli).

    from edgevla.hosting import open_policy
    policy = open_policy("art/pick-int8", transport="process", expect=expect)  # then policy.close()

sources.py         replay / artifact / bnb / checkpoint: which one a source is, opened in this process
transports.py      open_policy: in this thread, a respawned worker process, or `edgevla serve` remotely
worker_process.py  the worker child: `python -m edgevla.hosting.worker_process SOURCE ...`
control.py         robot + cameras + worker + control loop, wired once for run, eval, bench sim, demo

Importing this package imports no torch; only opening a checkpoint does.
"""

from edgevla.hosting.sources import is_remote
from edgevla.hosting.transports import TRANSPORTS, open_policy

__all__ = ["TRANSPORTS", "is_remote", "open_policy"]
