"""The first sections of the model card (Mitchell et al. 2019): model details, intended use and data, training."""

from __future__ import annotations

from typing import Any

from lamina.report.document import Absent, Code, Items, Paragraph, Picture, Section, Table, entry, listed, number
from lamina.report.limits import class_counts
from lamina.report.records import RunRecords

__all__ = ["model_details", "intended_use_and_data", "training"]

SHOWN_CLASSES = 40  # a class balance table longer than this is cut (its total stays)
PLACED_ELSEWHERE = {"confusion_matrix", "roc_curve", "precision_recall_curve", "reliability"}  # in Results


def flops(value: Any) -> str:
    """'18.69 MFLOPs (18,690,816)'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    for unit, scale in (("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit} ({number(int(value))})"
    return f"{number(int(value))} FLOPs"


def model_details(records: RunRecords) -> Section:
    summary, spec = records.summary, records.spec
    versions = summary.get("versions") if isinstance(summary.get("versions"), dict) else {}
    family = str(records.setting("model.name", summary.get("model", "?")))
    preset = records.setting("model.preset")
    rows = [
        ["family", family + (f" (preset {preset})" if preset else "")],
        ["parameters", number(summary.get("parameters"))],
        ["forward FLOPs per sample", flops(summary.get("forward_flops_per_sample"))],
        ["task", str(spec.get("task", "-"))],
        ["inputs", f"{spec.get('kind', '-')} of shape {tuple(spec.get('input_shape') or ())}"],
        ["outputs", number(spec.get("output_size"))],
        ["config hash", f"{records.config_hash} (SHA-256 of config.yaml)"],
        ["seed", number(records.setting("seed"))],
        ["lamina", str(versions.get("lamina", "-"))],
        ["torch", str(versions.get("torch", "-"))],
        ["python", str(versions.get("python", "-"))],
        ["date", records.date],
        ["run folder", str(records.folder.path)],
    ]
    return Section("Model details", [Table(["", ""], rows)])


def intended_use_and_data(records: RunRecords) -> list[Section]:
    description = records.setting("description")
    use = [
        Paragraph(str(description))
        if description
        else Absent("Intended use", "say what the model is for, and not for, in the config's description"),
        Paragraph(
            "The figures below hold for data drawn the way these splits were; the model was not evaluated on anything "
            "else."
        ),
    ]
    preprocessing = entry(records.data, "preprocessing")
    source = preprocessing.get("source")
    rows = [
        ["data set", str(records.setting("data.name", records.summary.get("data", "-")))],
        ["path", str(records.setting("data.path") or "-")],
        ["source", ", ".join(f"{key} {value}" for key, value in source.items()) if isinstance(source, dict) else "-"],
        ["preprocessing", str(preprocessing.get("type", "-"))],
        ["classes", number(records.spec.get("num_classes"))],
    ]
    data = Section("Data", [Table(["", ""], rows), *_splits(records)], level=3)
    return [
        Section("Intended use and data", use),
        data,
        Section("Groups", _groups(records), level=3),
        Section("Leakage check", _leakage(records), level=3),
        Section("Data notes and warnings", _notes(records), level=3),
    ]


def _split_sizes(records: RunRecords) -> dict[str, int]:
    sizes = {split: sum(counts) for split, counts in class_counts(records).items()}
    duplicates = records.facts.get("duplicates")
    for split, record in (duplicates or {}).items() if isinstance(duplicates, dict) else []:
        if isinstance(record, dict) and isinstance(record.get("of"), int):
            sizes.setdefault(split, record["of"])
    return sizes


def _splits(records: RunRecords) -> list:
    sizes, counts, names = _split_sizes(records), class_counts(records), records.class_names
    if not sizes:
        return [Absent("Split sizes", "data.json holds them for runs trained since the data facts were kept")]
    order = [split for split in ("train", "val", "test", "unlabelled") if split in sizes]
    blocks: list = [Table(["split", "samples"], [[split, number(sizes[split])] for split in order], "Splits")]
    if "train" not in sizes:
        blocks.append(Absent("The train split's size"))
    if counts and names:
        shown = [split for split in order if split in counts]
        rows = [
            [names[index] if index < len(names) else str(index)]
            + [f"{counts[split][index]:,} ({counts[split][index] / max(sum(counts[split]), 1):.1%})" for split in shown]
            for index in range(min(len(names), SHOWN_CLASSES))
        ]
        caption = "Class balance" + (f" (the first {SHOWN_CLASSES} of {len(names)} classes)" if len(names) > 40 else "")
        blocks.append(Table(["class", *shown], rows, caption))
    return blocks


def _groups(records: RunRecords) -> list:
    groups = records.summary.get("groups")
    if not isinstance(groups, dict) or not groups:
        return [Absent("Groups", "name where each sample's group comes from with data.groups")]
    blocks: list = []
    for attribute, record in groups.items():
        if not isinstance(record, dict):
            continue
        splits = entry(record, "splits")
        names = sorted({str(name) for split in splits for name in entry(splits, split, "groups")})
        rows = [
            [name] + [number(entry(splits, split, "groups", name).get("count", 0)) for split in splits]
            for name in names
        ]
        blocks.append(Paragraph(f"{attribute}: {record.get('source', 'source not recorded')}"))
        blocks.append(Table([attribute, *splits], rows, f"Samples per {attribute} group"))
        if listed(record.get("unseen")):
            blocks.append(Paragraph(f"In test but not in train: {', '.join(map(str, record['unseen']))}."))
    return blocks


def _leakage(records: RunRecords) -> list:
    duplicates = records.facts.get("duplicates")
    if not isinstance(duplicates, dict):
        return [Absent("Copies of training samples in val and test", "data.json keeps them for newer runs")]
    rows = []
    for split, record in duplicates.items():
        if isinstance(record, dict):
            kind = "samples with a copy elsewhere in train" if split == "train" else "copies of a training sample"
            examples = ", ".join(map(str, record.get("examples", []))) or "-"
            rows.append([split, kind, number(record.get("count")), number(record.get("of")), examples])
    caption = "Byte-for-byte copies (SHA-1 of each stored sample)"
    return [Table(["split", "what", "count", "of", "first indices"], rows, caption)]


def _notes(records: RunRecords) -> list:
    notes = [f"note: {note}" for note in listed(records.data.get("notes"))]
    warnings = [*listed(records.data.get("warnings")), *listed(records.summary.get("warnings"))]
    notes += [f"warning: {warning}" for warning in dict.fromkeys(map(str, warnings))]
    return [Items(notes)] if notes else [Paragraph("The data checks found nothing to note.")]


def training(records: RunRecords) -> list[Section]:
    summary = records.summary
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    optimizer = records.setting("train.optimizer.name", "-")
    rate = records.setting("train.optimizer.learning_rate")
    rows = [
        ["status", str(summary.get("status", "-"))],
        ["epochs", number(summary.get("epochs"))],
        ["steps", number(summary.get("steps"))],
        ["wall time", f"{number(summary.get('wall_seconds'), 1)} s"],
        ["samples per second", number(summary.get("samples_per_second"), 1)],
        ["device, threads", f"{summary.get('device', '-')}, {summary.get('threads', '-')}"],
        ["batch size", number(records.setting("train.batch_size"))],
        ["optimizer", f"{optimizer}, learning rate {rate if rate is not None else '-'}"],
        ["schedule", str(records.setting("train.schedule.name", "-"))],
        ["loss", str(records.setting("train.loss.name", "-"))],
        ["best", f"{best.get('monitor', '-')} {number(best.get('value'))} at epoch {best.get('epoch', '-')}"],
    ]
    if summary.get("stopped_early"):
        rows.append(["stopped early", str(summary["stopped_early"])])
    curves = [
        Picture(path, stem.replace("_", " "))
        for stem, path in records.plots.items()
        if stem not in PLACED_ELSEWHERE and not stem.startswith("groups-")
    ]
    blocks = [Table(["", ""], rows), *curves, Code(records.config_text, "The resolved config (config.yaml)")]
    return [
        Section("Training", blocks),
        Section("Compute", _compute(summary), level=3),
        Section("Energy and emissions", _energy(summary), level=3),
    ]


def _compute(summary: dict) -> list:
    compute = summary.get("compute")
    blocks: list = []
    if isinstance(compute, dict):
        rows = [
            [key.replace("_", " "), flops(value) if "flops" in key and "second" not in key else number(value)]
            for key, value in compute.items()
        ]
        blocks.append(Table(["", ""], rows))
    else:
        blocks.append(Absent("FLOPs per step and in total, CPU time"))
    budget = summary.get("budget")
    if isinstance(budget, dict):
        limits = ", ".join(f"{key} {number(value)}" for key, value in budget.items() if key != "reached")
        reached = f"; reached: {budget['reached']}" if budget.get("reached") else ""
        blocks.append(Paragraph(f"Budget: {limits}{reached}."))
    return blocks


def _energy(summary: dict) -> list:
    energy = summary.get("energy")
    if not isinstance(energy, dict):
        return [Absent("Energy and CO2e")]
    label = str(energy.get("label", "estimated")).upper()
    rows = [
        ["energy", f"{number(energy.get('joules'), 1)} J = {number(energy.get('kwh'), 6)} kWh ({label})"],
        ["method", str(energy.get("method", "-"))],
        ["CO2e", f"{number(energy.get('co2e_grams'), 3)} g ({label})"],
        ["grid intensity", f"{number(energy.get('grid_intensity_g_per_kwh'), 1)} g CO2e/kWh"],
        ["grid source", str(energy.get("grid_source", "-"))],
    ]
    assumptions = [str(line) for line in listed(energy.get("assumptions"))]
    return [Table(["", ""], rows), *([Paragraph("Assumptions:"), Items(assumptions)] if assumptions else [])]
