"""click commands whose errors fit on one line: bad usage, and every `UserError` of ours.

Boolean flags take both spellings users bring: ours (`--mirror`, `--no-mirror`) and
NVlabs' (`--mirror=1`, `--mirror=false`), which their READMEs and tutorials use.
"""

import errno
import math
import os
import sys

import click

from cstylegan.runtime.errors import UserError


# Errors of the user's disk rather than of our code, and what to do about each.
WRITE_ERRORS = {
    errno.ENOSPC: "free some space, or give an output folder on another disk",
    errno.EDQUOT: "free some of your quota, or give an output folder elsewhere",
    errno.EROFS: "that filesystem is read-only; give an output folder elsewhere",
    errno.EACCES: "check its permissions, or give another path",
    errno.ENOENT: "no folder can be made there (a path under /proc, a missing drive); give an output path you can "
                  "write to",
    errno.ENOTDIR: "part of that path is a file, not a folder; give another path",
    errno.EISDIR: "that is a folder; give a file name",
}


class BoolOption(click.Option):
    """A boolean flag, `--x` / `--no-x`, that also takes NVlabs' `--x=1|0|true|false|yes|no`
    (Command.parse_args spells that as one of the two). A real flag, so `--force SRC OUT` leaves
    SRC to the arguments."""

    def __init__(self, param_decls, **kwargs):
        decls = [f"{decl}/--no-{decl[2:]}" if decl.startswith("--") else decl for decl in param_decls]
        super().__init__(decls, is_flag=True, **kwargs)

    def get_help_record(self, ctx):
        names, help_text = super().get_help_record(ctx)
        return f"{', '.join(self.opts)}[=1|0] / {', '.join(self.secondary_opts)}", help_text

    def as_flag(self, name: str, value: str, ctx) -> str:
        """`--x=VALUE` (or `--no-x=VALUE`) as the flag it means: `--x` or `--no-x`."""
        try:
            wanted = click.BOOL.convert(value, None, ctx)
        except click.BadParameter:
            raise click.UsageError(f"{name}={value}: {value!r} is not a valid boolean; write {name}, "
                                   f"{name}=1 or {name}=0", ctx) from None
        if name in self.secondary_opts:
            wanted = not wanted
        return [opt for opt in self.opts if opt.startswith("--")][0] if wanted else self.secondary_opts[0]


class FiniteFloat(click.FloatRange):
    """A float that is a number, optionally within click.FloatRange's bounds
    (`FiniteFloat(min=0, min_open=True)`): click's FLOAT and FloatRange take nan (every comparison
    with it is false) and inf, which then draw black images or never end."""

    name = "float"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


FINITE = FiniteFloat()


def bool_option(*param_decls, **kwargs):
    """@bool_option("--mirror", help=...): a BoolOption whose value is None when not given."""
    kwargs.setdefault("default", None)
    return click.option(*param_decls, cls=BoolOption, **kwargs)


class Command(click.Command):
    """A click command that prints `Error: <what went wrong> (see --help)` and exits 2 on bad usage,
    instead of click's usage block, and `Error: <message>` with exit 2 for a UserError raised
    anywhere below it. Also takes -h for help and wraps help at 100 columns."""

    def __init__(self, *args, context_settings=None, **kwargs):
        settings = dict(help_option_names=["-h", "--help"], max_content_width=100, **(context_settings or {}))
        super().__init__(*args, context_settings=settings, **kwargs)

    def parse_args(self, ctx, args):
        """NVlabs' `--x=VALUE` of a BoolOption becomes `--x` or `--no-x` before click parses; the
        arguments as given stay in ctx.meta["args"] (for a command that starts itself again)."""
        ctx.meta["args"] = list(args)
        flags = {name: option for option in self.params if isinstance(option, BoolOption)
                 for name in (*option.opts, *option.secondary_opts) if name.startswith("--")}
        spelled = []
        for arg in args:
            name, equals, value = arg.partition("=")
            spelled.append(flags[name].as_flag(name, value, ctx) if equals and name in flags else arg)
        return super().parse_args(ctx, spelled)

    def main(self, args=None, prog_name=None, **extra):
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as error:
            click.echo(f"Error: {error.format_message()} (see --help)", err=True)
            sys.exit(2)
        except UserError as error:
            if os.environ.get("RANK", "0") == "0":  # of several processes, the first speaks for all
                click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise  # not the user's disk: a bug, keep its traceback
            click.echo(f"Error: {error.filename or 'a file'}: {error.strerror}; {WRITE_ERRORS[error.errno]}", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
