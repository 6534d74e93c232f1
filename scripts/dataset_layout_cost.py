"""Why edgevla writes one file per episode: the cost of keeping shared files durable instead.

An mp4 or parquet file cannot be appended to once closed. Packing episodes into shared files
*and* making each episode durable at once therefore means rewriting (remuxing, no re-encoding)
the shared file after every episode. This measures that rewrite for a growing file next to the
per-episode publish (fsync + rename) edgevla does.

    .venv/bin/python scripts/dataset_layout_cost.py EPISODE.mp4 [MAX_EPISODES]
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import av

from edgevla.dataset.durable import publish


def remux(sources: list[Path], target: Path) -> None:
    """Concatenate mp4 files into one by copying packets, shifting each file's timestamps."""
    with av.open(str(target), "w", format="mp4") as out:
        stream_out, offset = None, 0
        for source in sources:
            with av.open(str(source)) as src:
                stream_in = src.streams.video[0]
                if stream_out is None:
                    stream_out = out.add_stream_from_template(stream_in, opaque=True)
                last = 0
                for packet in src.demux(stream_in):
                    if packet.dts is None:
                        continue
                    last = max(last, packet.pts + packet.duration)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = stream_out
                    out.mux(packet)
                offset += last


def main(episode: Path, max_episodes: int) -> None:
    work = Path(tempfile.mkdtemp())
    size_mb = episode.stat().st_size / 1e6
    print(f"episode video: {episode} ({size_mb:.1f} MB)")
    for count in sorted({1, 5, 10, 20, max_episodes}):
        sources = [episode] * count
        tmp = work / "shared.mp4.tmp"
        start = time.monotonic()
        remux(sources, tmp)
        publish(tmp, work / "shared.mp4")
        shared_ms = (time.monotonic() - start) * 1000
        copy = work / f"episode-{count}.mp4.tmp"
        shutil.copyfile(episode, copy)
        start = time.monotonic()
        publish(copy, work / f"episode-{count}.mp4")
        own_ms = (time.monotonic() - start) * 1000
        print(
            f"saving episode {count:3d}: rewrite shared file {shared_ms:8.1f} ms ({count * size_mb:6.1f} MB) | own file {own_ms:6.1f} ms"
        )
    shutil.rmtree(work)
    os.sync()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
