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
        "title": "Content Too Large",
        "status": 413,
        "detail": "The request body is larger than the 67108864 bytes this service accepts.",
    },
    408: {
        "type": "about:blank",
        "title": "Request Timeout",
        "status": 408,
        "detail": "The request body did not arrive within 30 s.",
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
    503: {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The service is at capacity (2 running, 32 waiting). Retry after 1 s.",
    },
}

GRADIENTS_PROBLEMS = {
    **PROBLEMS,
    415: {
        **PROBLEMS[415],
        "detail": "The body must be JSON (Content-Type: application/json) or "
        "application/vnd.safetensors (got text/plain).",
    },
}
"""/v1/gradients also takes safetensors bodies, which its 415 names."""
"""The problem answered, in order: to `{"X": [[1, 2]`; to a body sent slower than the default
timeout; to a body over the default limit; to a body sent as text/plain; to
`SHAPE_MISMATCH_REQUEST`; when every computation slot and waiting place is taken."""

PROBLEM_SPEC: dict[str, Any] = {
    "seed": "student-042",
    "shape": {"N": 2, "D_in": 2, "H": 3, "D_out": 1},
}

GRADE_REQUEST: dict[str, Any] = {
    "problem": REQUEST,
    "submission": {
        "loss": 2.0,
        "gradients": {
            "Y_pred": [[1.0], [1.0]],
            "W2": [[5.0], [1.0], [7.0]],
            "H": [[2.0, -2.0, 2.0], [2.0, -2.0, 2.0]],
        },
    },
}
"""dloss/dY_pred without its factor 2, dloss/dW2 computed from it, dloss/dH without the mask."""


GRADE_BATCH_REQUEST: dict[str, Any] = {
    "problem": REQUEST,
    "items": [
        {"submission": GRADE_REQUEST["submission"]},
        {"submission": {"loss": 2.0}},
    ],
}

PROBLEM: dict[str, Any] = {
    "problem_id": (
        "gsp1.eyJzZWVkIjoic3R1ZGVudC0wNDIiLCJzcGVjIjp7IkRfaW4iOjIsIkRfb3V0IjoxL"
        "CJIIjozLCJOIjoyLCJtYXhfYWJzIjozLCJ2YWx1ZXMiOiJpbnRlZ2VycyIsInplcm9zX2l"
        "uX0giOiJhdm9pZCJ9fQ"
    ),
    "spec": {
        "seed": "student-042",
        "shape": {"N": 2, "D_in": 2, "H": 3, "D_out": 1},
        "values": "integers",
        "max_abs": 3,
        "scale": 1.0,
        "zeros_in_H": "avoid",
    },
    "X": [[-3.0, 3.0], [1.0, 1.0]],
    "Y": [[0.0], [0.0]],
    "W1": [[-2.0, 2.0, 0.0], [0.0, -3.0, 3.0]],
    "W2": [[-2.0], [3.0], [-2.0]],
}
"""The answer to `PROBLEM_SPEC`."""

GRADE_RESPONSE: dict[str, Any] = {
    "score": 1.5,
    "max_score": 6.0,
    "quantities": {
        "loss": {
            "status": "correct",
            "score": 1.0,
            "max_score": 1.0,
            "message": "loss is correct.",
            "expected_shape": [],
            "received_shape": [],
            "diagnoses": [],
        },
        "Y_pred": {
            "status": "incorrect",
            "score": 0.0,
            "max_score": 1.0,
            "message": "dloss/dY_pred is wrong in 2 of 2 entries, the first at row 1, column 1.",
            "expected_shape": [2, 1],
            "received_shape": [2, 1],
            "wrong_count": 2,
            "wrong_indices": [[0, 0], [1, 0]],
            "diagnoses": [
                {
                    "code": "mean_instead_of_sum",
                    "message": "This is the right answer divided by 2: "
                    "the loss is a sum of squares, not a "
                    "mean.",
                },
                {
                    "code": "missing_factor_2",
                    "message": "This is half the right answer: "
                    "dloss/dY_pred = 2 (Y_pred - Y), and the "
                    "factor 2 seems to be missing.",
                },
            ],
        },
        "W2": {
            "status": "incorrect",
            "score": 0.5,
            "max_score": 1.0,
            "message": "dloss/dW2 is wrong in 3 of 3 entries, the first at row 1, column 1. "
            "It is right for your dloss/dY_pred: it is wrong only "
            "because dloss/dY_pred is (partial credit).",
            "expected_shape": [3, 1],
            "received_shape": [3, 1],
            "wrong_count": 3,
            "wrong_indices": [[0, 0], [1, 0], [2, 0]],
            "diagnoses": [
                {
                    "code": "mean_instead_of_sum",
                    "message": "This is the right answer divided by 2: the "
                    "loss is a sum of squares, not a mean.",
                },
                {
                    "code": "missing_factor_2",
                    "message": "This is half the right answer: "
                    "dloss/dY_pred = 2 (Y_pred - Y), and the "
                    "factor 2 seems to be missing.",
                },
            ],
            "follows_from": "Y_pred",
        },
        "H_relu": {
            "status": "missing",
            "score": 0.0,
            "max_score": 1.0,
            "message": "dloss/dH_relu was not submitted.",
            "expected_shape": [2, 3],
            "diagnoses": [],
        },
        "H": {
            "status": "incorrect",
            "score": 0.0,
            "max_score": 1.0,
            "message": "dloss/dH is wrong in 2 of 6 entries, the first at row 1, column 3.",
            "expected_shape": [2, 3],
            "received_shape": [2, 3],
            "wrong_count": 2,
            "wrong_indices": [[0, 2], [1, 1]],
            "diagnoses": [
                {
                    "code": "missing_relu_mask",
                    "message": "The ReLU's mask is missing: the gradient passes only where H > 0.",
                }
            ],
        },
        "W1": {
            "status": "missing",
            "score": 0.0,
            "max_score": 1.0,
            "message": "dloss/dW1 was not submitted.",
            "expected_shape": [2, 3],
            "diagnoses": [],
        },
    },
    "tolerance": {
        "rtol": 1e-05,
        "atol_factor": 1e-09,
        "rule": "|a - b| <= atol + rtol * max(|a|, |b|) + E, atol = atol_factor * max "
        "|reference entry|, E = the entry's float32 rounding bound",
    },
    "follow_through_credit": 0.5,
    "language": "en",
}
"""The answer to `GRADE_REQUEST`."""

GRADE_BATCH_RESPONSE: dict[str, Any] = {
    "results": [
        GRADE_RESPONSE,
        {
            "score": 1.0,
            "max_score": 6.0,
            "quantities": {
                "loss": {
                    "status": "correct",
                    "score": 1.0,
                    "max_score": 1.0,
                    "message": "loss is correct.",
                    "expected_shape": [],
                    "received_shape": [],
                    "diagnoses": [],
                },
                "Y_pred": {
                    "status": "missing",
                    "score": 0.0,
                    "max_score": 1.0,
                    "message": "dloss/dY_pred was not submitted.",
                    "expected_shape": [2, 1],
                    "diagnoses": [],
                },
                "W2": {
                    "status": "missing",
                    "score": 0.0,
                    "max_score": 1.0,
                    "message": "dloss/dW2 was not submitted.",
                    "expected_shape": [3, 1],
                    "diagnoses": [],
                },
                "H_relu": {
                    "status": "missing",
                    "score": 0.0,
                    "max_score": 1.0,
                    "message": "dloss/dH_relu was not submitted.",
                    "expected_shape": [2, 3],
                    "diagnoses": [],
                },
                "H": {
                    "status": "missing",
                    "score": 0.0,
                    "max_score": 1.0,
                    "message": "dloss/dH was not submitted.",
                    "expected_shape": [2, 3],
                    "diagnoses": [],
                },
                "W1": {
                    "status": "missing",
                    "score": 0.0,
                    "max_score": 1.0,
                    "message": "dloss/dW1 was not submitted.",
                    "expected_shape": [2, 3],
                    "diagnoses": [],
                },
            },
            "tolerance": {
                "rtol": 1e-05,
                "atol_factor": 1e-09,
                "rule": "|a - b| <= atol + rtol * max(|a|, |b|) + E, atol = atol_factor * max "
                "|reference entry|, E = the entry's float32 rounding bound",
            },
            "follow_through_credit": 0.5,
            "language": "en",
        },
    ],
    "diagnosis_counts": {"mean_instead_of_sum": 1, "missing_factor_2": 1, "missing_relu_mask": 1},
    "diagnosis_counts_by_quantity": {
        "Y_pred": {"mean_instead_of_sum": 1, "missing_factor_2": 1},
        "W2": {"mean_instead_of_sum": 1, "missing_factor_2": 1},
        "H": {"missing_relu_mask": 1},
    },
    "status_counts": {
        "loss": {"correct": 2},
        "Y_pred": {"incorrect": 1, "missing": 1},
        "W2": {"incorrect": 1, "missing": 1},
        "H_relu": {"missing": 2},
        "H": {"incorrect": 1, "missing": 1},
        "W1": {"missing": 2},
    },
}
"""The answer to `GRADE_BATCH_REQUEST`."""

DAMAGED_PROBLEM_ID_REQUEST: dict[str, Any] = {
    "problem": {"problem_id": "gsp1.xx"},
    "submission": {},
}

DAMAGED_PROBLEM_ID: dict[str, Any] = {
    "type": "urn:gradserve:problem:invalid-request",
    "title": "Invalid request",
    "status": 422,
    "detail": "problem.problem_id: the problem id is damaged: it does not decode",
    "errors": [
        {
            "pointer": "/problem/problem_id",
            "detail": "problem.problem_id: the problem id is damaged: it does not decode",
        }
    ],
    "error_count": 1,
}
"""The answer to `DAMAGED_PROBLEM_ID_REQUEST`."""

IMPOSSIBLE_SPEC: dict[str, Any] = {
    "seed": 1,
    "shape": {"N": 2, "D_in": 2, "H": 2, "D_out": 1},
    "values": "normal",
    "zeros_in_H": "require",
}

GENERATION_FAILED: dict[str, Any] = {
    "type": "urn:gradserve:problem:generation-failed",
    "title": "No such problem",
    "status": 422,
    "detail": "normal values are never exactly 0: use integers or quarters",
}
"""The answer to `IMPOSSIBLE_SPEC`."""

REVEAL_REFUSED: dict[str, Any] = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "This deployment does not reveal reference answers (GRADSERVE_ALLOW_REVEAL).",
}
"""The answer to `GRADE_REQUEST` with "reveal": true where revealing is not allowed."""

BATCH_REQUEST: dict[str, Any] = {"problems": [REQUEST, SHAPE_MISMATCH_REQUEST]}

BATCH_RESPONSE: dict[str, Any] = {
    "results": [
        RESPONSE,
        {
            "type": "urn:gradserve:problem:invalid-request",
            "title": "Invalid request",
            "status": 422,
            "detail": "X has 2 columns but W1 has 1 row "
            "(shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
            "errors": [
                {
                    "pointer": "/problems/1/W1",
                    "detail": "X has 2 columns but W1 has 1 row "
                    "(shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
                }
            ],
            "error_count": 1,
        },
    ]
}
"""The answer to `BATCH_REQUEST`."""

EMPTY_BATCH: dict[str, Any] = {
    "type": "urn:gradserve:problem:invalid-request",
    "title": "Invalid request",
    "status": 422,
    "detail": "problems must not be empty",
    "errors": [{"pointer": "/problems", "detail": "problems must not be empty"}],
    "error_count": 1,
}
"""The answer to a batch of no problems, `{"problems": []}`."""

GRADESCOPE_RESPONSE: dict[str, Any] = {
    "score": 1.5,
    "output": "1.5 / 6",
    "tests": [
        {
            "name": "loss",
            "score": 1.0,
            "max_score": 1.0,
            "status": "passed",
            "output": "loss is correct.",
        },
        {
            "name": "dloss/dY_pred",
            "score": 0.0,
            "max_score": 1.0,
            "status": "failed",
            "output": "dloss/dY_pred is wrong in 2 of 2 entries, the first at row 1, column "
            "1.\n"
            "This is the right answer divided by 2: the loss is a sum of squares, "
            "not a mean.\n"
            "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), and the "
            "factor 2 seems to be missing.",
        },
        {
            "name": "dloss/dW2",
            "score": 0.5,
            "max_score": 1.0,
            "status": "failed",
            "output": "dloss/dW2 is wrong in 3 of 3 entries, the first at row 1, column 1. It "
            "is right for your dloss/dY_pred: it is wrong only because "
            "dloss/dY_pred is (partial credit).\n"
            "This is the right answer divided by 2: the loss is a sum of squares, "
            "not a mean.\n"
            "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), and the "
            "factor 2 seems to be missing.",
        },
        {
            "name": "dloss/dH_relu",
            "score": 0.0,
            "max_score": 1.0,
            "status": "failed",
            "output": "dloss/dH_relu was not submitted.",
        },
        {
            "name": "dloss/dH",
            "score": 0.0,
            "max_score": 1.0,
            "status": "failed",
            "output": "dloss/dH is wrong in 2 of 6 entries, the first at row 1, column 3.\n"
            "The ReLU's mask is missing: the gradient passes only where H > 0.",
        },
        {
            "name": "dloss/dW1",
            "score": 0.0,
            "max_score": 1.0,
            "status": "failed",
            "output": "dloss/dW1 was not submitted.",
        },
    ],
}
"""The answer of /v1/grade/gradescope to `GRADE_REQUEST`."""

PRAIRIELEARN_RESPONSE: dict[str, Any] = {
    "gradable": True,
    "score": 0.25,
    "message": "1.5 / 6",
    "tests": [
        {
            "name": "loss",
            "points": 1.0,
            "max_points": 1.0,
            "message": "loss is correct.",
            "output": "loss is correct.",
        },
        {
            "name": "dloss/dY_pred",
            "points": 0.0,
            "max_points": 1.0,
            "message": "dloss/dY_pred is wrong in 2 of 2 entries, the first at row 1, column 1.",
            "output": "dloss/dY_pred is wrong in 2 of 2 entries, the first at row 1, column "
            "1.\n"
            "This is the right answer divided by 2: the loss is a sum of squares, "
            "not a mean.\n"
            "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), and the "
            "factor 2 seems to be missing.",
        },
        {
            "name": "dloss/dW2",
            "points": 0.5,
            "max_points": 1.0,
            "message": "dloss/dW2 is wrong in 3 of 3 entries, the first at row 1, column 1. "
            "It is right for your dloss/dY_pred: it is wrong only because "
            "dloss/dY_pred is (partial credit).",
            "output": "dloss/dW2 is wrong in 3 of 3 entries, the first at row 1, column 1. It "
            "is right for your dloss/dY_pred: it is wrong only because "
            "dloss/dY_pred is (partial credit).\n"
            "This is the right answer divided by 2: the loss is a sum of squares, "
            "not a mean.\n"
            "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), and the "
            "factor 2 seems to be missing.",
        },
        {
            "name": "dloss/dH_relu",
            "points": 0.0,
            "max_points": 1.0,
            "message": "dloss/dH_relu was not submitted.",
            "output": "dloss/dH_relu was not submitted.",
        },
        {
            "name": "dloss/dH",
            "points": 0.0,
            "max_points": 1.0,
            "message": "dloss/dH is wrong in 2 of 6 entries, the first at row 1, column 3.",
            "output": "dloss/dH is wrong in 2 of 6 entries, the first at row 1, column 3.\n"
            "The ReLU's mask is missing: the gradient passes only where H > 0.",
        },
        {
            "name": "dloss/dW1",
            "points": 0.0,
            "max_points": 1.0,
            "message": "dloss/dW1 was not submitted.",
            "output": "dloss/dW1 was not submitted.",
        },
    ],
}
"""The answer of /v1/grade/prairielearn to `GRADE_REQUEST`."""
