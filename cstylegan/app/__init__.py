"""The web page to try a snapshot by hand: `python -m cstylegan.app`."""
