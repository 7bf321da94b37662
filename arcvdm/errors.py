"""User-facing errors: each one is a single line naming what is wrong, where, and the fix."""


class ArcvdmError(Exception):
    """An error caused by the user's input; the CLI prints it on one line and exits with code 2."""


class TaskFormatError(ArcvdmError, ValueError):
    """A task file or grid breaks a rule of the ARC format."""


class UnknownNameError(ArcvdmError, KeyError):
    """A registry lookup with a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class OutputError(ArcvdmError, OSError):
    """A file or folder that cannot be written where the user asked (a file in the way, no permission, disk full)."""
