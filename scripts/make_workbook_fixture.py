#!/usr/bin/env python3
"""Writes tests/data/workbooks/asc12_code_lists.xlsx, the test fixture for `ascqr import-codes`.

A workbook laid out like CMS's measure data dictionaries (title rows above the header, codes
stored as numbers and as text, a repeated code, a blank row), built from the Office Open XML
parts with the standard library only, so regenerating it needs no package. The codes are real
ASC-12 codes; 45399 (unlisted colon procedure) is not in our reconstruction.

    python3 scripts/make_workbook_fixture.py
"""
import pathlib
import zipfile
from xml.sax.saxutils import escape

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "workbooks" / "asc12_code_lists.xlsx"

# Each sheet: rows of cells; a cell is a str (text), an int/float (number) or None (empty).
SHEETS = {
    "Cohort Codes": [
        ["ASC-12 Facility 7-Day Risk-Standardized Hospital Visit Rate after Outpatient Colonoscopy"],
        ["Table 1. Qualifying procedure codes"],
        [],
        ["CPT/HCPCS Code", "Short Description"],
        [45378, "Diagnostic colonoscopy"],
        ["45380", "Colonoscopy and biopsy"],
        [" g0121 ", "Colon ca scrn not hi rsk ind"],
        [],
        [45378, "Diagnostic colonoscopy (repeated row)"],
        ["45385", "Colonoscopy w/lesion removal"],
        ["45399", "Unlisted procedure colon"],
    ],
    "Exclusions": [
        ["ICD-10-CM Code", "Description"],
        ["K50.00", "Crohn's disease of small intestine without complications"],
        ["K57.20", "Diverticulitis of large intestine with perforation and abscess without bleeding"],
        ["k51.90", "Ulcerative colitis, unspecified, without complications"],
    ],
    "Bad": [
        ["HCPCS", "Description"],
        ["45378", "Diagnostic colonoscopy"],
        ["4537X!", "A code with the wrong shape"],
    ],
}


def column_letter(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def sheet_xml(rows, shared):
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
           '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>']
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{column_letter(c)}{r}"
            if value is None:
                continue
            if isinstance(value, str):
                # Shared strings for the first column, inline strings elsewhere: both occur.
                if c == 0:
                    if value not in shared:
                        shared.append(value)
                    cells.append(f'<c r="{ref}" t="s"><v>{shared.index(value)}</v></c>')
                else:
                    cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        if cells:
            out.append(f'<row r="{r}">{"".join(cells)}</row>')
    out.append("</sheetData></worksheet>")
    return "".join(out)


def main():
    shared = []
    sheets = [(name, sheet_xml(rows, shared)) for name, rows in SHEETS.items()]
    n = len(sheets)
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
        + '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        + "".join(f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>' for i, (name, _) in enumerate(sheets, start=1))
        + "</sheets></workbook>"
    )
    workbook_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
        + f'<Relationship Id="rId{n + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId{n + 2}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        "</Relationships>"
    )
    shared_xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(shared)}" uniqueCount="{len(shared)}">'
        + "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in shared)
        + "</sst>"
    )
    styles = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="1"><xf/></cellXfs></styleSheet>'
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # Fixed timestamps so the file is the same byte for byte on every run.
    with zipfile.ZipFile(OUT, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name, text):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
        add("[Content_Types].xml", content_types)
        add("_rels/.rels", rels)
        add("xl/workbook.xml", workbook)
        add("xl/_rels/workbook.xml.rels", workbook_rels)
        add("xl/sharedStrings.xml", shared_xml)
        add("xl/styles.xml", styles)
        for i, (_, xml) in enumerate(sheets, start=1):
            add(f"xl/worksheets/sheet{i}.xml", xml)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
