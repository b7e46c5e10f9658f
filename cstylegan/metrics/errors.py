"""The one error type of the metrics: something the user can fix, said in one line."""

from cstylegan.runtime.errors import UserError


class MetricError(UserError):
    """A metric that cannot be computed as asked; the message says what to change."""
