"""Where the code runs: command-line helpers, devices, processes for multi-GPU, the CPU allocator."""
