"""What a grade says, in English and in Chinese (the exercise is taught in both).

`say` fills a message template in a `Language`, which the API chooses from the request's
Accept-Language header (`service.api.negotiation.language`). Keys are the grade statuses,
``follows_from``, and the diagnosis codes of `service.grading.diagnoses`.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh"]

LABELS = {
    "loss": "loss",
    "Y_pred": "dloss/dY_pred",
    "W2": "dloss/dW2",
    "H_relu": "dloss/dH_relu",
    "H": "dloss/dH",
    "W1": "dloss/dW1",
}

MESSAGES: dict[Language, dict[str, str]] = {
    "en": {
        "correct": "{quantity} is correct.",
        "incorrect": "{quantity} is wrong in {wrong} of {total} entries, the first at {entry}.",
        "entry": "row {row}, column {column}",
        "incorrect_scalar": "{quantity} is wrong.",
        "wrong_shape": "{quantity} should have shape {expected} but has shape {received}.",
        "missing": "{quantity} was not submitted.",
        "follows_from": "It is right for your {upstream}: it is wrong only because {upstream} is "
        "(partial credit).",
        "missing_factor_2": "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), "
        "and the factor 2 seems to be missing.",
        "sign_flipped": "This is the negative of the right answer: check the sign of Y_pred - Y.",
        "mean_instead_of_sum": "This is the right answer divided by {divisor}: the loss is a sum "
        "of squares, not a mean.",
        "scaled": "This is the right answer times {factor}.",
        "transposed": "This is the transpose of the right answer.",
        "flattened": "These are the right entries flattened into a 1-D array: submit a matrix "
        "of shape {expected}.",
        "used_H_instead_of_H_relu": "This is H^T dloss/dY_pred: dloss/dW2 uses H_relu, the "
        "ReLU's output, not H.",
        "missing_relu_mask": "The ReLU's mask is missing: the gradient passes only where H > 0.",
        "relu_mask_includes_zero": "The mask passes the gradient where H == 0 too; it passes "
        "only where H > 0.",
        "operands_swapped": "The operands of the product are swapped: the result is the "
        "transpose of the right answer.",
        "imprecise": "Right to about 3 significant digits, but not to 6: compute in float32 or "
        "float64 and give at least 6 significant digits.",
        "dW2_for_dH_relu": "This has the shape and the value of dloss/dW2 = "
        "H_relu^T dloss/dY_pred; dloss/dH_relu is dloss/dY_pred W2^T.",
        "dH_relu_for_dW2": "This has the shape and the value of dloss/dH_relu = "
        "dloss/dY_pred W2^T; dloss/dW2 is H_relu^T dloss/dY_pred.",
        "forward_value": "This is the forward value itself, not the gradient of the loss with "
        "respect to it.",
    },
    "zh": {
        "correct": "{quantity} 正确。",
        "incorrect": "{quantity} 有 {wrong}/{total} 个元素错误，第一个位于{entry}。",
        "entry": "第 {row} 行第 {column} 列",
        "incorrect_scalar": "{quantity} 错误。",
        "wrong_shape": "{quantity} 的形状应为 {expected}，但提交的形状是 {received}。",
        "missing": "未提交 {quantity}。",
        "follows_from": "按你提交的 {upstream} 计算，这一项是正确的：错误只来自 {upstream}"
        "（给予部分分数）。",
        "missing_factor_2": "这是正确答案的一半：dloss/dY_pred = 2 (Y_pred - Y)，"
        "似乎漏掉了系数 2。",
        "sign_flipped": "这是正确答案的相反数：请检查 Y_pred - Y 的符号。",
        "mean_instead_of_sum": "这是正确答案除以 {divisor}：损失是平方和，不是平均值。",
        "scaled": "这是正确答案乘以 {factor}。",
        "transposed": "这是正确答案的转置。",
        "flattened": "元素正确，但被展平成了一维数组：请提交形状为 {expected} 的矩阵。",
        "used_H_instead_of_H_relu": "这是 H^T dloss/dY_pred：dloss/dW2 应使用 ReLU 的输出 "
        "H_relu，而不是 H。",
        "missing_relu_mask": "缺少 ReLU 的掩码：梯度只在 H > 0 处通过。",
        "relu_mask_includes_zero": "掩码在 H == 0 处也传递了梯度；梯度只在 H > 0 处通过。",
        "operands_swapped": "乘积的两个因子顺序颠倒了：结果是正确答案的转置。",
        "imprecise": "大约前 3 位有效数字正确，但不到 6 位：请用 float32 或 float64 计算，"
        "并至少给出 6 位有效数字。",
        "dW2_for_dH_relu": "这是 dloss/dW2 = H_relu^T dloss/dY_pred 的形状和值；"
        "dloss/dH_relu 应为 dloss/dY_pred W2^T。",
        "dH_relu_for_dW2": "这是 dloss/dH_relu = dloss/dY_pred W2^T 的形状和值；"
        "dloss/dW2 应为 H_relu^T dloss/dY_pred。",
        "forward_value": "这是前向传播的值本身，而不是损失对它的梯度。",
    },
}


def entry(lang: Language, index: list[int]) -> str:
    """A matrix entry as people name it, counting from 1 ("row 2, column 4" for the 0-based
    index [1, 3]); the index itself for an array of another number of dimensions."""
    if len(index) != 2:
        return str(index)
    return MESSAGES[lang]["entry"].format(row=index[0] + 1, column=index[1] + 1)


def say(lang: Language, key: str, **values: object) -> str:
    """The message `key` in `lang`, with `quantity` and `upstream` given as names (e.g. "W1")."""
    for name in ("quantity", "upstream"):
        if name in values:
            values[name] = LABELS[str(values[name])]
    return MESSAGES[lang][key].format(**values)
