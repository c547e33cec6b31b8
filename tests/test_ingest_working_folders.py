"""Fewer folders made and removed per file inside a run folder: handler working folders reused
(:mod:`aodncore.util.workdirs`, switched on per object by :func:`aodncore.ingest.runner.ingest_object`), and a
quarantined file's reason sidecar written in the object's own folder (no folder of its own).

The same landing objects — published, quarantined (failed ``cf:1.6``, not NetCDF), failed (a system error in the
handler), and a handler that litters its working folder — ingested with both and without them (a new
``TemporaryDirectory`` per handler run and per sidecar) give the same outcomes, log lines, published,
archived and error-store files with the same content, and leave nothing of any object in the run folder but the
one emptied spare.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, HANDLER_PREFIX, IMOS_DIR, aodncore_lines, comparable_outcomes

from aodncore.ingest import list_landing
from aodncore.ingest import quarantine as quarantine_module
from aodncore.ingest import runner as runner_module
from aodncore.ingest.configure import build_settings
from aodncore.ingest.runner import in_run_folder, ingest_object
from aodncore.ingest.scratch import run_scratch
from aodncore.pipeline.imoshandler import ImosGenericHandler

GOOD = list(GOOD_FILES)[:2]
_RANDOM = re.compile(r"[0-9a-f]{32}|[0-9a-f-]{36}|\d{8}T\d{6}Z?|[ow]-\w{8}|(?<=-)[0-9a-f]{8}\b|(?<=Handler)\w{8}\b"
                     r"|datetime\.datetime\([^)]*\)")
"""Ids, time stamps and random folder names, which differ from run to run."""
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\d:Z]*")


class LitteringHandler(ImosGenericHandler):
    """Says what its working folder holds, then leaves files, folders and links all over it."""

    def preprocess(self) -> None:
        folder = Path(self.instance_working_directory)
        listing = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        self.logger.info("working folder holds %s", listing)
        (Path(self.products_dir) / "product.txt").write_text("product")
        (Path(self.temp_dir) / "deep" / "deeper").mkdir(parents=True)
        (Path(self.temp_dir) / "deep" / "deeper" / "scratch.bin").write_bytes(b"\0" * 100)
        (folder / "loose.txt").write_text("loose")
        (folder / "own-folder").mkdir()
        os.symlink(IMOS_DIR, Path(self.temp_dir) / "data-link")


def _run(tmp_path: Path, tag: str, reuse: bool, handler: str | None, caplog, monkeypatch) -> tuple:
    if not reuse:  # the classic way: a new folder per handler run, and per quarantined file's sidecar
        monkeypatch.setattr(runner_module, "_reusable_root", lambda _tmp: None)
        sidecar_folder = quarantine_module._sidecar_folder
        monkeypatch.setattr(quarantine_module, "_sidecar_folder", lambda _private, work: sidecar_folder(None, work))
    landing = tmp_path / tag / "landing"
    landing.mkdir(parents=True)
    base = tmp_path / tag / "base"
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"], handler=handler)
    caplog.clear()
    with run_scratch(tmp_path / tag / "work") as run:
        settings = in_run_folder(settings, run.path)
        outcomes = []
        for _landed in range(2):  # the same files landed twice: the second time in the reused folders
            for name in (*GOOD, BAD_NC):
                shutil.copy(IMOS_DIR / name, landing / name)
            objects = sorted(list_landing(str(landing)), key=lambda o: o.name)
            outcomes += [ingest_object(obj, settings).to_dict() for obj in objects]
        left = sorted(str(p.relative_to(run.path)) for p in run.path.rglob("*"))
    monkeypatch.undo()

    def plain(text: str) -> str:
        return _RANDOM.sub("<id>", text.replace(str(tmp_path / tag), ""))

    outcomes = comparable_outcomes(outcomes)
    lines = aodncore_lines(caplog.records, plain)
    stores = sorted((plain(str(p.relative_to(base))), hashlib.sha256(p.read_bytes()).hexdigest())
                    for p in base.rglob("*") if p.is_file() and "ingest" not in p.name and p.suffix != ".json")
    sidecars = sorted(_MOMENT.sub("<time>", plain(p.read_text())) for p in base.rglob("*.json")
                      if "ingest" not in p.name)
    return [plain(repr(o)) for o in outcomes], lines, stores, sidecars, [_RANDOM.sub("<id>", x) for x in left]


@pytest.mark.parametrize("handler", [None, f"{HANDLER_PREFIX}:ExplodingHandler", f"{__name__}:LitteringHandler"])
def test_reused_and_new_working_folders_give_the_same_outcomes_logs_and_stores(tmp_path, caplog, monkeypatch,
                                                                                handler):
    caplog.set_level(logging.DEBUG, logger="aodncore")
    reused = _run(tmp_path, "reused", True, handler, caplog, monkeypatch)
    fresh = _run(tmp_path, "fresh", False, handler, caplog, monkeypatch)

    for mine, theirs in zip(reused[:4], fresh[:4], strict=True):
        assert mine == theirs, "\n".join(difflib.unified_diff("\n".join(map(str, theirs)).splitlines(),
                                                              "\n".join(map(str, mine)).splitlines(), lineterm=""))
    outcomes, lines, stores, _sidecars, left = reused
    assert len(outcomes) == 6 and lines and stores
    statuses = sorted({re.search(r"'status': '(\w+)'", outcome).group(1) for outcome in outcomes})
    # (the exploding handler fails in process(): the file that is not NetCDF is refused by its check before that)
    assert statuses == (["failed", "quarantined"] if handler and "Exploding" in handler else
                        ["published", "quarantined"])
    # nothing of any object is left: the object folder and the handlers' spare folder, both empty but for their
    # sub-folders
    assert fresh[4] == ["<id>", "<id>/landing", "<id>/processing", "owner.json", "owner.lock"]
    assert sorted(left) == sorted([*fresh[4], "<id>", "<id>/collection", "<id>/products", "<id>/temp"])
    if handler and "Littering" in handler:  # each run's folder held only what HandlerBase put there
        held = [line for _name, _level, line in lines if line.startswith("working folder holds")]
        assert len(held) == 6 and set(held) == {
            _RANDOM.sub("<id>", f"working folder holds ['collection', 'collection/{name}', 'products', 'temp']")
            for name in (*GOOD, BAD_NC)}
