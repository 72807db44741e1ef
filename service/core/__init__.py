"""The numerical core, pure NumPy: the network's forward and backward passes and their costs."""
