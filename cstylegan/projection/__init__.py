"""Projecting a photo into a generator's w space: the optimiser, its distances, and `python -m cstylegan.projection`."""
