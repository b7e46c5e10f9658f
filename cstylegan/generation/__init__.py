"""Drawing pictures from a generator: z from seeds, class swaps, style mixing, projected ws, image grids and videos."""
