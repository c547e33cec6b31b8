"""SftpStorageBroker against a real SSH/SFTP server (asyncssh) listening on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime

import paramiko
import pytest

from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import StorageBrokerError
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, RemotePipelineFile
from aodncore.pipeline.storage import (
    SftpStorageBroker,
    get_storage_broker,
    sftp_makedirs,
    sftp_mkdir_p,
    sftp_path_exists,
)

asyncssh = pytest.importorskip("asyncssh")


class SftpServer:
    """An asyncssh SSH server with an SFTP subsystem chrooted to ``root``, run on its own event loop thread."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.root = workdir / "root"
        self.root.mkdir()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key = host_key
        self.client_key_file = workdir / "client_key"
        client_key.write_private_key(str(self.client_key_file))
        os.chmod(self.client_key_file, 0o600)
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sftp-test-server", daemon=True)
        self.server = None
        self.port = None

    def _sftp_factory(self, chan):
        return asyncssh.SFTPServer(chan, chroot=str(self.root).encode())

    async def _start(self):
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[self.host_key],
                                     authorized_client_keys=self._authorized, sftp_factory=self._sftp_factory,
                                     allow_scp=False)

    def start(self):
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        self.port = self.server.sockets[0].getsockname()[1]
        self.known_hosts = self.workdir / "known_hosts"
        public = self.host_key.export_public_key().decode().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")

    def stop(self):
        async def _close():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(_close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    server = SftpServer(tmp_path_factory.mktemp("sftp"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated_ssh_environment(monkeypatch, tmp_path):
    """Keep the user's agent, keys and known_hosts out of the tests."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("AODNCORE_SFTP_ACCEPT_UNKNOWN_HOSTS", "AODNCORE_SFTP_KNOWN_HOSTS", "AODNCORE_SFTP_KEY_FILE",
                 "AODNCORE_SFTP_USERNAME", "AODNCORE_SFTP_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def area(sftp_server, request):
    """A fresh directory on the server for one test: (absolute path on the server, local path of it)."""
    name = request.node.name.replace("[", "_").replace("]", "_")
    local = sftp_server.root / name
    local.mkdir()
    return f"/{name}", local


@pytest.fixture
def make_broker(sftp_server):
    brokers = []

    def _make(prefix, **kwargs):
        kwargs.setdefault("known_hosts", str(sftp_server.known_hosts))
        broker = SftpStorageBroker("127.0.0.1", prefix, port=sftp_server.port, username="tester",
                                   key_filename=str(sftp_server.client_key_file), **kwargs)
        brokers.append(broker)
        return broker

    yield _make
    for broker in brokers:
        broker.close()


@pytest.fixture
def broker(make_broker, area):
    return make_broker(area[0])


@pytest.fixture
def make_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()

    def _make(name, dest_path, content=None):
        path = src / name
        path.write_bytes(content if content is not None else f"content of {name}".encode())
        return PipelineFile(str(path), dest_path=dest_path, publish_type=PipelineFilePublishType.UPLOAD_ONLY)

    return _make


@pytest.fixture
def raw_sftp(sftp_server):
    """A plain paramiko SFTP client on the test server (for the module-level helpers)."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(sftp_server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=sftp_server.port, username="tester",
                   key_filename=str(sftp_server.client_key_file), allow_agent=False, look_for_keys=False)
    sftp = client.open_sftp()
    yield sftp
    sftp.close()
    client.close()


def _deletion(dest_path):
    return PipelineFile(os.path.basename(dest_path), dest_path=dest_path, is_deletion=True,
                        publish_type=PipelineFilePublishType.DELETE_ONLY)


def _fill(local_root, rel_paths):
    for rel in rel_paths:
        path = local_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


# ---- helpers -------------------------------------------------------------------------------------------------

def test_sftp_path_exists(raw_sftp, area):
    remote, local = area
    _fill(local, ["x/y.nc"])
    assert sftp_path_exists(raw_sftp, f"{remote}/x/y.nc")
    assert sftp_path_exists(raw_sftp, f"{remote}/x")
    assert not sftp_path_exists(raw_sftp, f"{remote}/nope")


def test_sftp_makedirs_and_mkdir_p(raw_sftp, area):
    remote, local = area
    sftp_makedirs(raw_sftp, f"{remote}/a/b/c")
    assert (local / "a/b/c").is_dir()
    with pytest.raises(OSError):
        sftp_makedirs(raw_sftp, f"{remote}/a/b/c")  # exists: an error for makedirs...
    sftp_mkdir_p(raw_sftp, f"{remote}/a/b/c")  # ...but not for mkdir -p
    sftp_mkdir_p(raw_sftp, f"{remote}/a/b/c/d/")
    assert (local / "a/b/c/d").is_dir()
    sftp_makedirs(raw_sftp, f"{remote}/e/f/.")
    assert (local / "e/f").is_dir()


def test_sftp_mkdir_p_over_a_file_fails(raw_sftp, area):
    remote, local = area
    _fill(local, ["file"])
    with pytest.raises(OSError):
        sftp_mkdir_p(raw_sftp, f"{remote}/file/sub")


# ---- broker --------------------------------------------------------------------------------------------------

def test_url_with_port_and_user(sftp_server):
    broker = get_storage_broker(f"sftp://tester@127.0.0.1:{sftp_server.port}/some/where")
    assert (broker.server, broker.port, broker.username, broker.prefix) == ("127.0.0.1", sftp_server.port,
                                                                            "tester", "/some/where")
    assert repr(broker) == "SftpStorageBroker(server='127.0.0.1', prefix='/some/where')"


def test_upload_creates_directories(broker, area, make_file):
    _remote, local = area
    files = PipelineFileCollection([make_file("a.nc", "IMOS/X/a.nc"), make_file("b.nc", "IMOS/Y/z/b.nc")])
    broker.upload(files)
    assert (local / "IMOS/X/a.nc").read_bytes() == b"content of a.nc"
    assert (local / "IMOS/Y/z/b.nc").read_bytes() == b"content of b.nc"
    assert all(f.is_stored for f in files)
    assert broker.sftp_client is None  # connection closed after the batch


def test_set_is_overwrite_before_any_connection(broker, area, make_file):
    _remote, local = area
    _fill(local, ["IMOS/a.nc", "IMOS/b.nc.bak"])
    existing, new = make_file("a.nc", "IMOS/a.nc"), make_file("b.nc", "IMOS/b.nc")
    connections = []
    original_connect = broker._connect

    def counting_connect():
        connections.append(1)
        original_connect()

    broker._connect = counting_connect
    broker.set_is_overwrite(PipelineFileCollection([existing, new]))
    assert len(connections) == 1  # one connection for the whole collection...
    assert broker.sftp_client is None  # ...closed afterwards
    assert existing.is_overwrite is True
    assert new.is_overwrite is False
    broker.upload(PipelineFileCollection([existing, new]))
    assert (local / "IMOS/a.nc").read_bytes() == b"content of a.nc"


def test_delete(broker, area):
    _remote, local = area
    _fill(local, ["D/a.nc", "D/b.nc"])
    deletion = _deletion("D/a.nc")
    broker.delete(deletion)
    assert deletion.is_stored
    assert not (local / "D/a.nc").exists()
    assert (local / "D/b.nc").exists()
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.delete(_deletion("D/missing.nc"))
    assert str(excinfo.value).startswith(f"error deleting '{area[0]}/D/missing.nc': ")


def test_query(broker, area):
    _remote, local = area
    _fill(local, ["IMOS/b.nc", "IMOS/B.nc", "IMOS/a.nc", "IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc", "IMOS/sub/x.nc",
                  "OTHER/o.nc"])
    everything = broker.query()
    assert sorted(everything.keys()) == sorted(["IMOS/b.nc", "IMOS/B.nc", "IMOS/a.nc", "IMOS/sub/abc1.nc",
                                                "IMOS/sub/abc2.nc", "IMOS/sub/x.nc", "OTHER/o.nc"])
    imos = broker.query("IMOS/").keys()
    assert imos == ["IMOS/B.nc", "IMOS/a.nc", "IMOS/b.nc", "IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc", "IMOS/sub/x.nc"]
    assert broker.query("IMOS/sub/abc").keys() == ["IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc"]
    assert len(broker.query("NOTHING/")) == 0
    rf = everything.get_pipelinefile_from_dest_path("OTHER/o.nc")
    assert rf.name == "o.nc" and rf.size == len("OTHER/o.nc")
    assert isinstance(rf.last_modified, datetime)
    with pytest.raises(StorageBrokerError):
        broker.query("/abs/")


def test_download_round_trip_from_query(broker, area, tmp_path):
    _remote, local = area
    _fill(local, ["IMOS/x/a.nc", "IMOS/y/b.nc"])
    target = tmp_path / "dl"
    remote_files = broker.query("IMOS/")
    broker.download(remote_files, str(target))
    for rf in remote_files:
        assert rf.local_path == os.path.join(str(target), rf.dest_path)
        with open(rf.local_path) as f:
            assert f.read() == rf.dest_path
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.download(RemotePipelineFile("IMOS/none.nc"), str(target))
    assert str(excinfo.value).startswith(f"error downloading 'IMOS/none.nc' to '{target}': ")


def test_delete_regexes(broker, area):
    _remote, local = area
    _fill(local, ["A/a1.nc", "A/a2.txt", "B/b.nc"])
    deleted = broker.delete_regexes([r"A/.*\.nc"])
    assert deleted.get_attribute_list("dest_path") == ["A/a1.nc"]
    assert sorted(broker.query().keys()) == ["A/a2.txt", "B/b.nc"]


def test_unknown_host_key_is_refused(make_broker, area, make_file, tmp_path):
    empty_known_hosts = tmp_path / "known_hosts_empty"
    empty_known_hosts.write_text("")
    broker = make_broker(area[0], known_hosts=str(empty_known_hosts))
    pf = make_file("a.nc", "a.nc")
    with pytest.raises(paramiko.SSHException):
        broker.upload(pf)
    assert not pf.is_stored
    assert not (area[1] / "a.nc").exists()
    with pytest.raises(StorageBrokerError):
        broker.query()


def test_wrong_host_key_is_refused(make_broker, sftp_server, area, make_file, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    bad_known_hosts = tmp_path / "known_hosts_bad"
    bad_known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} {other[0]} {other[1]}\n")
    broker = make_broker(area[0], known_hosts=str(bad_known_hosts), accept_unknown_hosts=True)
    with pytest.raises(paramiko.SSHException):
        broker.upload(make_file("a.nc", "a.nc"))


def test_unknown_host_accepted_when_opted_in_by_parameter(make_broker, area, make_file, tmp_path):
    empty_known_hosts = tmp_path / "known_hosts_empty"
    empty_known_hosts.write_text("")
    broker = make_broker(area[0], known_hosts=str(empty_known_hosts), accept_unknown_hosts=True)
    broker.upload(make_file("a.nc", "a.nc"))
    assert (area[1] / "a.nc").exists()
    assert empty_known_hosts.read_text() == ""  # nothing persisted


def test_unknown_host_accepted_when_opted_in_by_environment(make_broker, area, make_file, tmp_path, monkeypatch):
    monkeypatch.setenv("AODNCORE_SFTP_ACCEPT_UNKNOWN_HOSTS", "1")
    empty_known_hosts = tmp_path / "known_hosts_empty"
    empty_known_hosts.write_text("")
    broker = make_broker(area[0], known_hosts=str(empty_known_hosts))
    assert broker.accept_unknown_hosts is True
    broker.upload(make_file("a.nc", "a.nc"))
    assert (area[1] / "a.nc").exists()


def test_settings_from_environment(sftp_server, area, make_file, monkeypatch):
    monkeypatch.setenv("AODNCORE_SFTP_KNOWN_HOSTS", str(sftp_server.known_hosts))
    monkeypatch.setenv("AODNCORE_SFTP_KEY_FILE", str(sftp_server.client_key_file))
    monkeypatch.setenv("AODNCORE_SFTP_USERNAME", "tester")
    monkeypatch.setenv("AODNCORE_SFTP_PORT", str(sftp_server.port))
    broker = get_storage_broker(f"sftp://127.0.0.1{area[0]}")
    assert broker.accept_unknown_hosts is False
    broker.upload(make_file("env.nc", "E/env.nc"))
    assert (area[1] / "E/env.nc").exists()


# ---- atomic uploads --------------------------------------------------------------------------------------------

class _ObservedSource:
    """A real source file whose reads call ``after_first_chunk`` once the first chunk went out (mid-upload)."""

    def __init__(self, handle, after_first_chunk):
        self._handle, self._after, self._reads = handle, after_first_chunk, 0

    def read(self, size=-1):
        self._reads += 1
        if self._reads == 3:  # two chunks sent: the upload is under way
            self._after()
        return self._handle.read(size)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()


def _open_observed(after_first_chunk):
    import builtins

    def _open(path, mode="r", *args, **kwargs):
        return _ObservedSource(builtins.open(path, mode, *args, **kwargs), after_first_chunk)

    return _open


def _temporaries(folder):
    from aodncore.pipeline.storage import SFTP_UPLOAD_TEMP_PREFIX

    return sorted(p.name for p in folder.iterdir() if p.name.startswith(SFTP_UPLOAD_TEMP_PREFIX))


BIG = bytes(range(256)) * 2048  # 512 KiB: many SFTP write chunks


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing"])
def test_a_reader_never_sees_a_half_written_file(broker, area, make_file, existing):
    from unittest import mock

    _remote, local = area
    final = local / "IMOS/X/a.nc"
    if existing:
        final.parent.mkdir(parents=True)
        final.write_bytes(b"the previous version")
    seen = {}

    def look():  # what a reader of the destination folder sees in the middle of the upload
        seen["final"] = final.read_bytes() if final.exists() else None
        seen["temporaries"] = _temporaries(final.parent)
        seen["listed"] = broker.query("IMOS/").keys()

    with mock.patch("aodncore.pipeline.storage.open", _open_observed(look), create=True):
        broker.upload(make_file("a.nc", "IMOS/X/a.nc", content=BIG))
    assert seen["final"] == (b"the previous version" if existing else None)
    assert len(seen["temporaries"]) == 1  # the bytes go to a temporary name in the destination folder...
    assert seen["listed"] == (["IMOS/X/a.nc"] if existing else [])  # ...which no query lists
    assert final.read_bytes() == BIG
    assert _temporaries(final.parent) == []


class _BrokenSource:
    """A source that fails after its first chunk (a disk error, a vanished network mount)."""

    def __init__(self, handle):
        self._handle, self._reads = handle, 0

    def read(self, size=-1):
        self._reads += 1
        if self._reads > 2:
            raise OSError(5, "Input/output error")
        return self._handle.read(size)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing"])
def test_an_interrupted_upload_leaves_no_partial_file_under_the_final_name(broker, area, make_file, existing):
    import builtins
    from unittest import mock

    _remote, local = area
    final = local / "IMOS/X/a.nc"
    if existing:
        final.parent.mkdir(parents=True)
        final.write_bytes(b"the previous version")
    pipeline_file = make_file("a.nc", "IMOS/X/a.nc", content=BIG)
    with mock.patch("aodncore.pipeline.storage.open", lambda *a, **k: _BrokenSource(builtins.open(*a, **k)),
                    create=True), pytest.raises(StorageBrokerError, match="Input/output error"):
        broker.upload(pipeline_file)
    assert not pipeline_file.is_stored
    if existing:
        assert final.read_bytes() == b"the previous version"
    else:
        assert not final.exists()
    assert _temporaries(final.parent) == []  # the partial temporary is removed too
    broker.upload(pipeline_file)  # and the retry succeeds
    assert final.read_bytes() == BIG


def test_a_temporary_left_by_a_killed_upload_is_never_listed(broker, area):
    from aodncore.pipeline.storage import SFTP_UPLOAD_TEMP_PREFIX

    _remote, local = area
    _fill(local, ["IMOS/a.nc", f"IMOS/{SFTP_UPLOAD_TEMP_PREFIX}0123456789abcdef"])
    assert broker.query("IMOS/").keys() == ["IMOS/a.nc"]
