"""Data sets: reading (dataset.py) and writing (writer.py) our zips, preparing images, the emoji set, class names."""
