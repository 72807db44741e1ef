"""The worked example shown in the OpenAPI document and the README, small enough to do by hand.

H = X W1 has an exact zero at row 0, column 2: there dloss/dH_relu is 2 but dloss/dH is 0, since
the gradient passes through ReLU only where H > 0.
"""

from typing import Any

REQUEST: dict[str, Any] = {
    "X": [[1, 2], [3, -1]],
    "Y": [[1], [8]],
    "W1": [[1, -1, 2], [1, 1, -1]],
    "W2": [[1], [-1], [1]],
}

RESPONSE: dict[str, Any] = {
    "loss": 2.0,
    "gradients": {
        "Y_pred": [[2.0], [2.0]],
        "W2": [[10.0], [2.0], [14.0]],
        "H_relu": [[2.0, -2.0, 2.0], [2.0, -2.0, 2.0]],
        "H": [[2.0, -2.0, 0.0], [2.0, 0.0, 2.0]],
        "W1": [[8.0, -2.0, 6.0], [2.0, -4.0, -2.0]],
    },
    "dtype": "float64",
    "shapes": {"N": 2, "D_in": 2, "H": 3, "D_out": 1},
}

SHAPE_MISMATCH_REQUEST: dict[str, Any] = {**REQUEST, "W1": [[1, -1, 2]]}

PROBLEMS: dict[int, dict[str, Any]] = {
    400: {
        "type": "urn:gradserve:problem:malformed-json",
        "title": "Malformed JSON",
        "status": 400,
        "detail": "The request body is not valid JSON: "
        "Invalid JSON: EOF while parsing a list at line 1 column 13",
    },
    413: {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": "The request body is larger than the 67108864 bytes this service accepts.",
    },
    415: {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "The body must be JSON, sent with Content-Type: application/json "
        "(got text/plain).",
    },
    422: {
        "type": "urn:gradserve:problem:invalid-request",
        "title": "Invalid request",
        "status": 422,
        "detail": "X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
        "errors": [
            {
                "pointer": "/W1",
                "detail": "X has 2 columns but W1 has 1 row "
                "(shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
            }
        ],
        "error_count": 1,
    },
}
"""The problem answered, in order: to `{"X": [[1, 2]`; to a body over the default limit; to a
body sent as text/plain; to `SHAPE_MISMATCH_REQUEST`."""
