"""Wall time per file of the three copies in the worker's per-file unit: resolve (into ``collection/``), archive
(``archive_path``) and publish (``dest_path``), plus the whole unit.

Runs ``ingest_object`` in a run folder over replicated real IMOS files (format checks only, one untimed file first),
as a pool worker does, with ``LocalFileStorageBroker._upload_file`` and the resolve step's ``safe_copy_file``
wrapped by timers (per call, wall clock: ``getrusage`` is too coarse for sub-millisecond calls). Run it with
``PYTHONPATH`` set to the code to measure.

Usage::

    python benchmarks/bench_copy_steps.py --files 1000
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import make_files  # noqa: E402
from proctree import load_average  # noqa: E402

_spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _timed(key: Callable[..., str], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            row = _spent[key(*args, **kwargs)]
            row[0] += 1
            row[1] += time.perf_counter() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()

    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.runner import in_run_folder, ingest_object
    from aodncore.ingest.scratch import run_scratch
    from aodncore.ingest.sources import LandingObject
    from aodncore.pipeline.steps import resolve
    from aodncore.pipeline.storage import local

    broker = local.LocalFileStorageBroker
    broker._upload_file = _timed(lambda self, f, attr: f"upload {attr}", broker._upload_file)
    resolve.safe_copy_file = _timed(lambda *a, **k: "resolve copy", resolve.safe_copy_file)

    tmp = Path(tempfile.mkdtemp(prefix="bench-copy-steps-"))
    try:
        files = make_files(tmp / "landing", args.files + 1)
        settings = build_settings(base_dir=str(tmp / "base"))
        settings.ledger = None
        library = logging.getLogger("aodncore")
        library.setLevel(logging.INFO)
        library.propagate = False
        with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
            settings = in_run_folder(settings, scratch.path)
            settings.defer_landing_removal = True
            ingest_object(LandingObject.from_path(files[0]), settings)
            _spent.clear()
            start = time.perf_counter()
            for path in files[1:]:
                assert ingest_object(LandingObject.from_path(path), settings).status == "published"
            total = time.perf_counter() - start
        count = len(files) - 1
        print(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_average()}, {count} files, "
              f"aodncore from {os.path.dirname(local.__file__)}")
        print(f"whole unit            {total * 1000 / count:.3f} ms/file wall")
        for key, (calls, wall) in sorted(_spent.items()):
            print(f"{key:20s}  {wall * 1000 / count:.3f} ms/file wall ({calls / count:.1f} calls/file)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
