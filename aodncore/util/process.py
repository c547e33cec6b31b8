"""Run an external command once, capturing its combined output."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from aodncore.common.exceptions import SystemCommandFailedError
from aodncore.util.misc import format_exception

__all__ = ["SystemProcess"]

# Handler test suites match these exact wordings (compat-addendum, SystemProcess), so the text is fixed.
_COMMAND_PROBLEMS = {
    "shell, not text": "command param must be a string if bash shell command",
    "shell, empty": "command param must not be empty if bash shell command",
    "no shell, not a list": "command parameter must be a list if not a bash shell command",
    "run twice": "command has already been executed",
}


class SystemProcess:
    """A system command executed at most once, with stdout and stderr merged into :attr:`stdout_text`.

    :param command: a list of arguments (``shell=False``) or a non-empty command string (``shell=True``)
    :param stdin: passed to :class:`subprocess.Popen`
    :param stdout: passed to :class:`subprocess.Popen`
    :param stdin_text: text written to the command's standard input
    :param env: the environment; a copy of ``os.environ`` unless a non-empty dict is given (used as is)
    :param shell: run through the shell
    :raises SystemCommandFailedError: if the command does not suit the ``shell`` mode (:meth:`validate_command`)
    """

    def __init__(self, command: list[str] | str, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE,
                 stdin_text: str | None = None, env: dict[str, str] | None = None, shell: bool = False) -> None:
        self.command = command
        self.shell = shell
        self.stdin = stdin
        self.stdout = stdout
        self.stdin_text = stdin_text
        #: the command's output (stdout and stderr merged); None until run, or when stdout is not a pipe
        self.stdout_text: str | None = None
        self.stderr_text: str | None = None
        self.env = env if env else os.environ.copy()
        self._executed = False
        self.validate_command()

    def validate_command(self) -> None:
        """Check that ``command`` suits ``shell``: a list without a shell, a non-empty string with one.

        :raises SystemCommandFailedError: naming what is wrong
        """
        problem = None
        if not self.shell:
            problem = None if isinstance(self.command, list) else "no shell, not a list"
        elif not isinstance(self.command, str):
            problem = "shell, not text"
        elif self.command == "":
            problem = "shell, empty"
        if problem is not None:
            raise SystemCommandFailedError(_COMMAND_PROBLEMS[problem])

    def execute(self) -> None:
        """Run the command (only once), store its output and raise if it failed.

        :raises SystemCommandFailedError: on a second call, if the command cannot be started, or if it exits non-zero
        """
        if self._executed:
            raise SystemCommandFailedError(_COMMAND_PROBLEMS["run twice"])
        self._executed = True

        try:
            process = subprocess.Popen(self.command, stdin=self.stdin, stdout=self.stdout, stderr=subprocess.STDOUT,
                                       env=self.env, shell=self.shell, universal_newlines=True)
        except OSError as e:
            raise SystemCommandFailedError(f"system command failed to execute. {format_exception(e)}") from e

        result = process.communicate(input=self.stdin_text)
        self.stdout_text = result[0]
        if process.wait() != 0:
            raise SystemCommandFailedError(f"system command exited with an error, output is {self.stdout_text}")
