"""click commands whose errors fit on one line: bad usage, and every `UserError` of ours."""

import sys

import click

from cstylegan.runtime.errors import UserError


class Command(click.Command):
    """A click command that prints `Error: <what went wrong> (see --help)` and exits 2 on bad usage,
    instead of click's usage block, and `Error: <message>` with exit 2 for a UserError raised
    anywhere below it. Also takes -h for help and wraps help at 100 columns."""

    def __init__(self, *args, context_settings=None, **kwargs):
        settings = dict(help_option_names=["-h", "--help"], max_content_width=100, **(context_settings or {}))
        super().__init__(*args, context_settings=settings, **kwargs)

    def main(self, args=None, prog_name=None, **extra):
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as error:
            click.echo(f"Error: {error.format_message()} (see --help)", err=True)
            sys.exit(2)
        except UserError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
