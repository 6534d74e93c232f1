"""One-line checks of numeric flags: NaN, infinity and out-of-range values never reach a loop.

argparse's `type=float` takes "nan" and "inf", and every comparison with NaN is false, so a
check like `value <= 0` lets it through (`run --duration nan` ran two ticks and exited 0).
"""

from __future__ import annotations

import math

from edgevla.errors import EdgevlaError


def check_number(
    flag: str,
    value: float | None,
    *,
    above: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> None:
    """Raise one line unless `value` (None: the flag was not given) is finite, > `above`,
    >= `minimum` and <= `maximum` (each bound only when set)."""
    if value is None:
        return
    fits = (
        math.isfinite(value)
        and (above is None or value > above)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    )
    if not fits:
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {minimum:g}" if minimum is not None else "",
        ]
        bounds.append(f"<= {maximum:g}" if maximum is not None else "")
        wanted = " and ".join(bound for bound in bounds if bound)
        raise EdgevlaError(f"{flag} must be a finite number{' ' + wanted if wanted else ''}, got {value:g}")
