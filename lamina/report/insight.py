"""The model card's last sections: explanations (a few pictures and the faithfulness figures), the training
doctor's findings, and the known limits."""

from __future__ import annotations

from lamina.report.document import Absent, Items, Paragraph, Picture, Section, Table, entry, listed, number
from lamina.report.limits import known_limits
from lamina.report.records import RunRecords

__all__ = ["explanations", "doctor", "limits"]

SHOWN_PICTURES = 4  # per folder of explanations


def explanations(records: RunRecords) -> Section:
    section = Section("Explanations")
    recorded = records.summary.get("explain")
    if isinstance(recorded, dict) and recorded.get("error"):
        section.blocks.append(Paragraph(f"The explain step at the end of training failed: {recorded['error']}"))
    if not records.explained:
        section.blocks.append(Absent("Explanations", f"make them with: lamina explain {records.folder.path}"))
        return section
    for explained in records.explained:
        record = explained.record
        folder = explained.folder.relative_to(records.folder.path)
        section.blocks.append(
            Paragraph(
                f"{folder}: {record.get('method')} on {len(listed(record.get('inputs')))} {record.get('modality')} inputs "
                f"of {record.get('split', 'given files')}; baseline: {record.get('baseline', '-')}."
            )
        )
        sanity, deletion = entry(record, "sanity_check"), entry(record, "deletion")
        rows = [
            ["rank correlation with a randomized model", number(sanity.get("randomized_rank_correlation"))],
            ["rank correlation with itself under input noise", number(sanity.get("self_rank_correlation"))],
            ["deletion area, most attributed first", number(deletion.get("auc"))],
            ["deletion area, random order", number(deletion.get("random_auc"))],
            ["inputs whose deletion area is below random", number(deletion.get("fraction_below_random"))],
        ]
        caption = (
            "Faithfulness: a faithful method has the first row far below the second, and the third below the fourth"
        )
        section.blocks.append(Table(["check", "value"], rows, caption))
        inputs = {
            str(one.get("name", "")).replace(":", "_"): one
            for one in listed(record.get("inputs"))
            if isinstance(one, dict)
        }
        for path in explained.pictures[:SHOWN_PICTURES]:
            found = inputs.get(path.stem, {})
            shown = f"{path.parent.name}/{path.name}"
            if found:
                shown += f": predicted {found.get('predicted')}" + (
                    f", true {found['true']}" if "true" in found else ""
                )
            section.blocks.append(Picture(path, shown))
        pages = sorted(explained.folder.glob("*.html"))
        if pages:
            named = ", ".join(str(page.relative_to(records.folder.path)) for page in pages)
            section.blocks.append(Paragraph(f"Highlighted tokens: {named} in the run folder."))
    return section


def doctor(records: RunRecords) -> Section:
    section = Section("Training doctor")
    if records.doctor is None:
        section.blocks.append(Absent("The training doctor's findings"))
        return section
    if not records.doctor_recorded:
        section.blocks.append(Paragraph("The run predates the doctor's record: these findings were diagnosed now."))
    if not records.doctor:
        section.blocks.append(Paragraph("The doctor found no problems."))
        return section
    columns = ("severity", "kind", "evidence", "suggestion")
    rows = [[str(finding.get(column, "-")) for column in columns] for finding in records.doctor]
    section.blocks.append(Table(["severity", "finding", "evidence", "suggestion"], rows, "Findings"))
    return section


def limits(records: RunRecords) -> Section:
    found = known_limits(records)
    if not found:
        return Section("Known limits", [Paragraph("The records show none; that does not mean there are none.")])
    return Section("Known limits", [Items(found)])
