"""Save docs/tui-calibration.svg: the calibration screen on a virtual SO-101 leader that sweeps
its joints, at the review step (ranges recorded; the stiff wrist_roll is flagged).

    .venv/bin/python scripts/tui_screenshot.py [--out docs/tui-calibration.svg]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from edgevla.firmware import Sweep, serve_robot
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.calibration_session import Phase

SIZE = (132, 30)


async def review_screen(port: str, profile: Path, out: Path) -> None:
    app = EdgevlaApp("so101_leader", port, calibration_out=profile, auto=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        while screen.phase is not Phase.CENTRE:
            await pilot.pause(0.1)
        await pilot.press("enter")
        await pilot.pause(6.0)  # every joint of the sweep reaches both ends
        await pilot.press("enter")
        while screen.phase is not Phase.REVIEW:
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))


class StiffWrist(Sweep):
    """The wrist_roll barely moves (a cable caught on it): the review flags its range."""

    def position(self, joint: int, t: float) -> float:
        return 2048 + 0.03 * (super().position(joint, t) - 2048) if joint == 4 else super().position(joint, t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/tui-calibration.svg")
    args = parser.parse_args()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as folder, serve_robot("so101_leader", motion=StiffWrist()) as arm:
        asyncio.run(review_screen(arm.port, Path(folder) / "so101_leader.json", out))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
