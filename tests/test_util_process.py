"""Tests for aodncore.util.process.SystemProcess (real commands, plus the documented subprocess patch target)."""

from __future__ import annotations

import subprocess
from unittest import mock

import pytest

from aodncore.common import SystemCommandFailedError
from aodncore.util.process import SystemProcess


def test_constructor_validation():
    # the classic messages, matched exactly by client tests
    with pytest.raises(SystemCommandFailedError,
                       match="^command parameter must be a list if not a bash shell command$"):
        SystemProcess("echo hi")  # shell=False needs a list
    with pytest.raises(SystemCommandFailedError, match="^command param must be a string if bash shell command$"):
        SystemProcess(["echo", "hi"], shell=True)
    with pytest.raises(SystemCommandFailedError, match="^command param must not be empty if bash shell command$"):
        SystemProcess("", shell=True)


def test_validate_command_is_public():
    process = SystemProcess(["true"])
    process.validate_command()
    process.command = "true"
    with pytest.raises(SystemCommandFailedError, match="must be a list"):
        process.validate_command()


def test_defaults_and_env_copy(monkeypatch):
    monkeypatch.setenv("AODN_TEST_VAR", "1")
    process = SystemProcess(["true"])
    assert process.command == ["true"]
    assert process.shell is False
    assert process.stdin is subprocess.PIPE and process.stdout is subprocess.PIPE
    assert process.stdin_text is None
    assert process.stdout_text is None and process.stderr_text is None
    assert process.env["AODN_TEST_VAR"] == "1"
    process.env["AODN_TEST_VAR"] = "changed"
    import os

    assert os.environ["AODN_TEST_VAR"] == "1"  # a copy, not the real environment

    custom = {"ONLY": "this"}
    assert SystemProcess(["true"], env=custom).env is custom
    assert SystemProcess(["true"], env={}).env["AODN_TEST_VAR"] == "1"  # an empty dict also inherits


def test_stdout_not_a_pipe_leaves_no_text(tmp_path):
    with open(tmp_path / "out.txt", "w") as handle:
        process = SystemProcess(["echo", "to the file"], stdout=handle)
        process.execute()
    assert process.stdout_text is None
    assert (tmp_path / "out.txt").read_text() == "to the file\n"


def test_execute_captures_merged_output():
    process = SystemProcess(["sh", "-c", "echo out; echo err 1>&2"])
    process.execute()
    assert process.stdout_text.splitlines() == ["out", "err"]


def test_execute_shell_with_stdin_and_env():
    process = SystemProcess("cat; echo $GREETING", stdin_text="from stdin\n", env={"GREETING": "hello", "PATH":
                                                                                    "/usr/bin:/bin"}, shell=True)
    process.execute()
    assert process.stdout_text == "from stdin\nhello\n"


def test_execute_only_once():
    process = SystemProcess(["true"])
    process.execute()
    with pytest.raises(SystemCommandFailedError, match="command has already been executed"):
        process.execute()


def test_nonzero_exit_raises_with_output():
    process = SystemProcess(["sh", "-c", "echo broken; exit 3"])
    with pytest.raises(SystemCommandFailedError, match="system command exited with an error, output is broken"):
        process.execute()
    assert process.stdout_text.strip() == "broken"


def test_launch_failure():
    process = SystemProcess(["/nonexistent/definitely-not-a-command"])
    with pytest.raises(SystemCommandFailedError, match=r"^system command failed to execute\. FileNotFoundError: "
                                                       r"\[Errno 2\] No such file or directory"):
        process.execute()


def test_subprocess_patch_target():
    with mock.patch("aodncore.util.process.subprocess") as patched:
        popen = patched.Popen.return_value
        popen.communicate.return_value = ("patched output", None)
        popen.wait.return_value = 0
        process = SystemProcess(["anything"], stdin_text="in")
        process.execute()
    popen.communicate.assert_called_once_with(input="in")
    popen.wait.assert_called_once_with()
    args, kwargs = patched.Popen.call_args
    assert args == (["anything"],)
    assert kwargs["stderr"] is patched.STDOUT
    assert kwargs["universal_newlines"] is True
    assert process.stdout_text == "patched output"
