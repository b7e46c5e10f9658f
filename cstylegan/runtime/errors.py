"""The one base of every error the user can fix: a file, an option, a data set, a config."""


class UserError(ValueError):
    """Something the user gave cannot be used; the message names it and the fix, in one line.
    `runtime.cli.Command` prints it as `Error: <message>` and exits with status 2, so it
    never reaches the user as a traceback. A ValueError, so callers that catch those still do."""
