"""One user-error type: every domain error is a UserError, and any command prints one as one line."""

import click
import pytest

from cstylegan.config import ConfigError
from cstylegan.data.classes import UnknownClassError
from cstylegan.data.image_prep import UnreadableImage
from cstylegan.data.writer import DatasetError
from cstylegan.metrics.errors import MetricError
from cstylegan.networks.vit_discriminator import BackboneWeightsError
from cstylegan.runtime.cli import Command
from cstylegan.runtime.devices import DeviceError
from cstylegan.runtime.errors import UserError
from cstylegan.snapshots.blend import BlendError
from cstylegan.snapshots.checkpoint import CheckpointError
from cstylegan.snapshots.nvlabs_pickle import NVlabsPickleError
from cstylegan.training.loop import TrainingDiverged
from experiments.spec import SpecError
from experiments.trainings import RunnerError

DOMAIN_ERRORS = [ConfigError, UnknownClassError, UnreadableImage, DatasetError, MetricError, BackboneWeightsError,
                 DeviceError, BlendError, CheckpointError, NVlabsPickleError, TrainingDiverged, SpecError, RunnerError]


@pytest.mark.parametrize("error", DOMAIN_ERRORS, ids=lambda error: error.__name__)
def test_domain_errors_are_user_errors(error):
    assert issubclass(error, UserError) and issubclass(error, ValueError)


@click.command(cls=Command)
@click.option("--depth", type=int, default=3)
def deep(depth):
    """Raises a domain error from a few calls down, as a real command would."""
    def down(n):
        if n == 0:
            raise CheckpointError("snap.pt: not a snapshot; pass a network-snapshot-*.pt")
        down(n - 1)
    down(depth)


def test_a_user_error_from_deep_inside_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        deep.main(args=[], prog_name="deep")
    assert exit.value.code == 2
    assert capsys.readouterr() == ("", "Error: snap.pt: not a snapshot; pass a network-snapshot-*.pt\n")


def test_a_programming_error_still_shows_its_traceback():
    with pytest.raises(ZeroDivisionError):
        Command(name="bug", callback=lambda: 1 / 0).main(args=[])
