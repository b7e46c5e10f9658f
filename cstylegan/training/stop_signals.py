"""Ctrl-C and `kill` (SIGTERM, as pre-empted machines and schedulers send) stop a run cleanly:
the loop finishes its minibatch, writes a snapshot and says how to resume. A second
Ctrl-C stops at once, losing only the work since the last snapshot."""

import signal
import threading


class StopRequest:
    """`with StopRequest() as stop:` ... `if stop.requested:` -> the name of the signal, or None."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False

    def _handle(self, number, frame):
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name
