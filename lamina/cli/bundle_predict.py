"""`lamina predict BUNDLE inputs…`: predictions from a bundle folder (lamina/bundle), printed as `lamina predict`
prints a run's. Imports neither PyTorch nor pydantic, so it runs where only the bundle runtime is installed."""

from __future__ import annotations

import json
from argparse import Namespace

from lamina.bundle import load_bundle

__all__ = ["predict_bundle", "format_table"]


def predict_bundle(arguments: Namespace) -> int | None:
    bundle = load_bundle(arguments.run_dir)
    results = bundle.predict(arguments.inputs)
    if arguments.json:
        for result in results:
            print(json.dumps(result))
        return None
    threshold = bundle.threshold
    if results and threshold is not None:  # two classes: decided at the run's threshold
        positive = threshold["positive_class"]
        value, chosen_on = threshold.get("value", float("nan")), threshold.get("chosen_on", "val")
        rule = threshold.get("rule", "max Youden's J")
        print(
            f"threshold {value:.4f} for {positive!r} (chosen on {chosen_on}, {rule}): {positive!r} where its "
            "probability is at least that"
        )
        rows = [[r["input"], r["label"], f"{r['probabilities'][positive]:.4f}"] for r in results]
        print(format_table(["input", "label", f"probability of {positive!r}"], rows))
    elif results and "probability" in results[0]:
        rows = [[r["input"], r["label"], f"{r['probability']:.4f}"] for r in results]
        print(format_table(["input", "label", "probability"], rows))
    else:
        rows = [[r["input"], _number(r["prediction"])] for r in results]
        print(format_table(["input", "prediction"], rows))
    return None


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell under a dashed rule, as lamina/cli/tables.py print_table prints them."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _number(value) -> str:
    return ", ".join(f"{v:.6g}" for v in value) if isinstance(value, list) else f"{value:.6g}"
