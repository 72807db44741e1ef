"""gradserve: the loss and all five gradients of a two-layer ReLU network, over HTTP.

`service.core.network` is the NumPy core; `service.app:app` the ASGI app serving it.
"""

__version__ = "1.0.0"
