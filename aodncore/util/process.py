"""Run an external command once, capturing its combined output."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from aodncore.common.exceptions import SystemCommandFailedError
from aodncore.util.misc import format_exception

__all__ = ["SystemProcess"]


class SystemProcess:
    """A system command executed at most once, with stdout and stderr merged into :attr:`stdout_text`.

    :param command: a list of arguments (``shell=False``) or a non-empty command string (``shell=True``)
    :param stdin: passed to :class:`subprocess.Popen`
    :param stdout: passed to :class:`subprocess.Popen`
    :param stdin_text: text written to the command's standard input
    :param env: the environment; a copy of ``os.environ`` unless a dict is given (used as-is)
    :param shell: run through the shell
    :raises SystemCommandFailedError: if the command does not suit the ``shell`` mode
    """

    def __init__(self, command: list[str] | str, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE,
                 stdin_text: str | None = None, env: dict[str, str] | None = None, shell: bool = False) -> None:
        if shell:
            if not isinstance(command, str) or not command:
                raise SystemCommandFailedError("when shell is True, command must be a non-empty string")
        elif not isinstance(command, list):
            raise SystemCommandFailedError("when shell is False, command must be a list of arguments")

        self.command = command
        self.shell = shell
        self.stdin = stdin
        self.stdout = stdout
        self.stdin_text = stdin_text
        self.stdout_text = ""
        self.stderr_text = ""
        self.env = env if isinstance(env, dict) else os.environ.copy()
        self._executed = False

    def execute(self) -> None:
        """Run the command (only once), store its output and raise if it failed.

        :raises SystemCommandFailedError: on a second call, if the command cannot be started, or if it exits non-zero
        """
        if self._executed:
            raise SystemCommandFailedError("command has already been executed")
        self._executed = True

        try:
            process = subprocess.Popen(self.command, stdin=self.stdin, stdout=self.stdout, stderr=subprocess.STDOUT,
                                       env=self.env, shell=self.shell, universal_newlines=True)
        except OSError as e:
            raise SystemCommandFailedError(f"system command failed to execute. {format_exception(e)}") from e

        result = process.communicate(input=self.stdin_text)
        output = result[0] if result else None
        return_code = process.wait()
        self.stdout_text = output or ""
        if return_code != 0:
            raise SystemCommandFailedError(f"system command exited with an error, output is {self.stdout_text}")
