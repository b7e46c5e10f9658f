"""Our snapshot files, NVlabs .pkl import, weights carried across class lists, and layer swapping between two generators."""
