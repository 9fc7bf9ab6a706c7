#!/usr/bin/env python3
"""Derive data-dictionary/claims/cclf_v36_layout.csv: CCLF record layouts (file, field, positions).

Usage (from the repository root):

    python3 data-dictionary/scripts/derive_cclf_layout.py --reference ../shared/reference

Source: layouts/cclf-v36/cclf_{0..9,a,b}.csv, transcribed from CMS's CCLF Information Packet v36.
The transcription keeps PDF line-break artefacts inside labels (`CLM_LINE_NU M`, a newline or an
ellipsis inside a name): every whitespace and ellipsis is removed. `Start Position` and
`End Position` are used; the transcriber's `new_end_position` is ignored (layouts/README.md).
`ascqr ingest --layout cclf` reads fixed-width CCLF files through this table. Positions change
between packet versions (v38 exists): the file name says the version. Standard library only;
deterministic. Rewrites this file's rows of data-dictionary/PROVENANCE.csv and leaves the others.
"""

import argparse
import csv
import io
import os

import provenance

VERSION = "ascqr-2026.1"
SCRIPT = "scripts/derive_cclf_layout.py"
OUT = "claims/cclf_v36_layout.csv"
FILES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    rows = []
    sources = []
    for f in FILES:
        src = "layouts/cclf-v36/cclf_%s.csv" % f
        path = os.path.join(args.reference, src)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            data = list(csv.reader(fh))
        sources.append(src)
        for r in data[1:]:
            clean = ["".join(c.split()).replace("\u2026", "") for c in r]
            rows.append([f.upper(), clean[0], clean[1], clean[3], clean[4]])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "element", "field", "start", "end", "status", "version"])
    for r in rows:
        w.writerow(r + ["public", VERSION])
    provenance.write_table(args.out, OUT, buf.getvalue(), args.reference, sources, SCRIPT, len(rows))
    print("wrote %s (%d fields)" % (OUT, len(rows)))


if __name__ == "__main__":
    main()
