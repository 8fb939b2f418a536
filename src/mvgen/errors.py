"""Exit codes and the typed error tree. Stdlib only: every layer may import this module.

Library code raises these; only the CLI turns them into exit codes and one-line messages.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # generation or encoding failed
    BAD_INPUT = 2  # shot list, audio, arguments
    PARTIAL = 3  # --keep-going and some shots failed
    ENVIRONMENT = 4  # weights missing offline, no GPU for --device cuda, ffmpeg missing
    BUSY = 75  # another render holds this job's lock (EX_TEMPFAIL)
    INTERRUPTED = 130


MAX_ERROR_LINES = 20  # errors shown at once; the rest are counted


class MvgenError(Exception):
    """Base of every error mvgen reports to a user. ``hint`` is an optional last line; ``more``:
    further errors found in the same check (a shot list with several mistakes), one line each."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None, more: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.more = tuple(more)

    @property
    def lines(self) -> list[str]:
        """Every error line, at most ``MAX_ERROR_LINES``, then how many more there are."""
        lines = [self.message, *self.more]
        if len(lines) <= MAX_ERROR_LINES:
            return lines
        rest = len(lines) - MAX_ERROR_LINES
        return [*lines[:MAX_ERROR_LINES], f"... and {rest} more error{'s' if rest > 1 else ''}"]


class ConfigError(MvgenError):
    """The shot list or a CLI argument is wrong."""

    exit_code = ExitCode.BAD_INPUT


class AudioError(MvgenError):
    """The audio file is missing, unreadable or unusable."""

    exit_code = ExitCode.BAD_INPUT


class SetupError(MvgenError):
    """The environment cannot run the job: weights not found offline, no GPU, no ffmpeg."""

    exit_code = ExitCode.ENVIRONMENT


class GenerationError(MvgenError):
    """The diffusion model failed on a shot."""

    exit_code = ExitCode.FAILURE


class EncodeError(MvgenError):
    """ffmpeg failed while writing a clip or the final video."""

    exit_code = ExitCode.FAILURE


class BusyError(MvgenError):
    """Another mvgen process holds a lock this job needs."""

    exit_code = ExitCode.BUSY


class Interrupted(MvgenError):
    """SIGINT/SIGTERM: the work done so far is kept and a re-run resumes."""

    exit_code = ExitCode.INTERRUPTED
