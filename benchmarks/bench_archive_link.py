"""The archive step alone: a declared private copy archived by hard link against the copy path.

Replicates the real IMOS test files (as ``bench_throughput.py`` does) into a ``processing`` folder, then archives
each with ``LocalFileStorageBroker.upload`` inside ``archive_uploads()`` and ``private_sources(path)``, as the
runner's flow does (:mod:`aodncore.util.privatecopies`); the copy variant sets ``AODNCORE_ARCHIVE_BY_LINK=0`` (the
unchanged copy path). Each round archives into a fresh store; rounds alternate the order. Prints wall, user and
system ms per file.

Usage::

    python benchmarks/bench_archive_link.py --files 300 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import make_files  # noqa: E402
from proctree import load_average  # noqa: E402


def _archive_all(files: list[Path], store: Path, link: bool) -> tuple[float, float, float]:
    from aodncore.pipeline import PipelineFile
    from aodncore.pipeline.storage import LocalFileStorageBroker
    from aodncore.util.privatecopies import ARCHIVE_BY_LINK_ENV, archive_uploads, private_sources

    os.environ[ARCHIVE_BY_LINK_ENV] = "1" if link else "0"
    broker = LocalFileStorageBroker(str(store))
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for path in files:
        with private_sources(str(path)), archive_uploads():
            broker.upload(PipelineFile(str(path), archive_path=f"pipe/{path.name}"), is_stored_attr="is_archived",
                          dest_path_attr="archive_path")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    per = 1000 / len(files)
    return wall * per, (after.ru_utime - before.ru_utime) * per, (after.ru_stime - before.ru_stime) * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-link-"))
    try:
        files = make_files(tmp / "processing", args.files)
        print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_average()}, {args.files} files "
              f"({sum(p.stat().st_size for p in files) / len(files) / 1024:.0f} KiB average), ms/file wall user sys")
        results: dict[str, list[tuple[float, float, float]]] = {"copy": [], "link": []}
        _archive_all(files[:20], tmp / "warm-link", True)
        _archive_all(files[:20], tmp / "warm-copy", False)
        for round_ in range(args.rounds):
            order = ("copy", "link") if round_ % 2 == 0 else ("link", "copy")
            for variant in order:
                store = tmp / f"store-{round_}-{variant}"
                results[variant].append(_archive_all(files, store, variant == "link"))
                shutil.rmtree(store)
                print(f"  round {round_} {variant}: " + " ".join(f"{v:.3f}" for v in results[variant][-1]))
        for variant, rows in results.items():
            medians = [statistics.median(row[i] for row in rows) for i in range(3)]
            print(f"{variant:5s} median wall {medians[0]:.3f} user {medians[1]:.3f} sys {medians[2]:.3f}")
        print(f"load at end {load_average()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
