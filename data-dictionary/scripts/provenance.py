"""Writing a derived table and its rows of data-dictionary/PROVENANCE.csv, shared by the
derive_*.py scripts that each make one table. Standard library only."""

import csv
import hashlib
import os


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_table(out_dir, out_name, text, reference, sources, script, rows):
    """Writes `text` as out_dir/out_name and replaces that table's rows of PROVENANCE.csv with one
    row per source file (path under `reference`, sha256, script, row count); other rows stay."""
    with open(os.path.join(out_dir, out_name), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    prov_path = os.path.join(out_dir, "PROVENANCE.csv")
    with open(prov_path, encoding="utf-8") as f:
        prov = list(csv.reader(f))
    header, rest = prov[0], [r for r in prov[1:] if r[0] != out_name]
    for src in sources:
        rest.append([out_name, src, sha256(os.path.join(reference, src)), script, str(rows)])
    with open(prov_path, "w", encoding="utf-8", newline="") as f:
        cw = csv.writer(f, lineterminator="\n")
        cw.writerow(header)
        cw.writerows(rest)
