"""The one error type of the metrics: something the user can fix, said in one line."""


class MetricError(ValueError):
    """A metric that cannot be computed as asked; the message says what to change."""
