#!/usr/bin/env python3
"""Derive data-dictionary/claims/ccw_names.csv: CCW short column names and their long names.

Usage (from the repository root):

    python3 data-dictionary/scripts/derive_ccw_names.py --reference ../shared/reference

CCW deliveries and downstream stores name columns either by their long names (`LINE_PLACE_OF_SRVC_CD`)
or by 8-character short names (`PLCSRVC`). `ascqr ingest --layout ccw` reads a CSV header of
short names through this table (a fixed-width file's .fts gives both names itself). Sources:
layouts/bfd_rif_ccw_short_names.csv (BFD RIF column -> CCW short name, CC0) and
layouts/resdac_fts_layouts_dorieh.csv (MBSF and MedPAR FTS layouts, Apache-2.0). Where one short
name has several long names (BUYIN01 is BENE_MDCR_ENTLMT_BUYIN_IND_01 in the MBSF A/B and
MDCR_ENTLMT_BUYIN_IND_01 in the A/B/C/D), the BFD name wins, then the newest FTS layout; the
reader accepts every vintage's long name anyway. Standard library only; deterministic. Rewrites
this file's rows of data-dictionary/PROVENANCE.csv and leaves the others.
"""

import argparse
import csv
import io
import os

import provenance

VERSION = "ascqr-2026.1"
SCRIPT = "scripts/derive_ccw_names.py"
BFD = "layouts/bfd_rif_ccw_short_names.csv"
DORIEH = "layouts/resdac_fts_layouts_dorieh.csv"
OUT = "claims/ccw_names.csv"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    names = {}  # short -> (long, status)
    with open(os.path.join(args.reference, BFD), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            short, long_ = row["ccw_short_name"].strip(), row["rif_column"].strip()
            if short and long_ and short != long_ and short not in names:
                names[short] = long_
    # Newest layouts first, so a short name keeps its newest long name.
    with open(os.path.join(args.reference, DORIEH), encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["file"], reverse=True)
    for row in rows:
        short, long_ = row["short_name"].strip(), row["long_name"].strip()
        if short and long_ and short != long_ and short not in names:
            names[short] = long_
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["short_name", "long_name", "status", "version"])
    for short in sorted(names):
        w.writerow([short, names[short], "public", VERSION])
    provenance.write_table(args.out, OUT, buf.getvalue(), args.reference, [BFD, DORIEH], SCRIPT, len(names))
    print("wrote %s (%d names)" % (OUT, len(names)))


if __name__ == "__main__":
    main()
