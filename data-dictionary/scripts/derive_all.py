#!/usr/bin/env python3
"""Derive the ascqr data dictionary (version ascqr-2026.1) from the public reference files.

Usage (from the repository root):

    python3 data-dictionary/scripts/derive_all.py --reference ../shared/reference

Python 3 standard library only.  Deterministic: re-running on the same reference files gives
byte-identical output.  Every derived CSV is UTF-8, LF, comma separated, with a header row and the
trailing columns `status` and `version`; the measure definitions (measures/<m>/<version>/) carry
`provenance` (official | reconstructed), `source` and `version` instead.  Selection rules are documented in data-dictionary/README.md;
the parameters below are the single place they live in code.

This script never writes data-dictionary/claims/ (maintained separately).
"""

import argparse
import csv
import hashlib
import io
import os
import sys
from collections import Counter, defaultdict

VERSION = "ascqr-2026.1"
SCRIPT = "scripts/derive_all.py"

# --------------------------------------------------------------------------------------------
# Source files (relative to the reference folder)
# --------------------------------------------------------------------------------------------
SRC_CCS_DX = "ccs/ccs_dx_icd10cm_2019_1.csv"
SRC_CCS_PR = "ccs/ccs_pr_icd10pcs_2019_1.csv"
SRC_CC_LABELS = "cc/cc_labels_201.csv"
SRC_RA_2026 = "cc/ra_dx_to_cc_2026.csv"
SRC_HCC_PY = "cc/cms_hcc_icd10cm_mappings_py2019_2026.csv"
SRC_CPT_CCS = "cpt/cpt_hcpcs_to_ccs.csv"
SRC_SURG_FLAGS = "cpt/surgery_flags_cpt_2017.csv"
SRC_RVU_2023 = "rvu/pfs_work_rvu_2023_jan.csv"
SRC_RVU_2025 = "rvu/pfs_work_rvu_2025_oct.csv"
SRC_FACILITY = "care-compare/2024-07/ASC_Facility.csv"
SRC_NATIONAL = "care-compare/2024-07/ASC_National.csv"
SRC_REVENUE = "codes/revenue_center.csv"
# project documents beside the reference folder (recorded in PROVENANCE.csv when present)
SRC_METHOD = "../design/measure-methodology.md"
SRC_SPEC = "../spec/ascqr-specifications-manual-v12.txt"
SRC_PAA = {
    "always_planned_procedure_ccs": "paa/always_planned_ccs_procedure_category.csv",
    "always_planned_diagnosis_ccs": "paa/always_planned_ccs_diagnosis_category.csv",
    "potentially_planned_procedure_ccs": "paa/potentially_planned_ccs_procedure_category.csv",
    "potentially_planned_icd10pcs": "paa/potentially_planned_icd_10_pcs.csv",
    "acute_diagnosis_ccs": "paa/acute_diagnosis_ccs.csv",
    "acute_diagnosis_icd10cm": "paa/acute_diagnosis_icd_10_cm.csv",
}

MEASURES = ["asc12", "asc17", "asc18", "asc19"]

# --------------------------------------------------------------------------------------------
# 1. Measures
# --------------------------------------------------------------------------------------------
MEASURE_META = {
    # measure: (name, short_name, cohort_period_years, rate_unit, national-file column)
    "asc12": ("Facility 7-Day Risk-Standardized Hospital Visit Rate after Outpatient Colonoscopy",
              "ASC-12", 3, "per_1000", "ASC-12 Nat Rate"),
    "asc17": ("Hospital Visits after Orthopedic Ambulatory Surgical Center Procedures",
              "ASC-17", 2, "per_100", "ASC-17 Nat Rate"),
    "asc18": ("Hospital Visits after Urology Ambulatory Surgical Center Procedures",
              "ASC-18", 2, "per_100", "ASC-18 Nat Rate"),
    "asc19": ("Facility-Level 7-Day Hospital Visits after General Surgery Procedures Performed at "
              "Ambulatory Surgical Centers", "ASC-19", 2, "ratio", "ASC-19 Nat Rate"),
}
UNIT_DIVISOR = {"per_1000": 1000.0, "per_100": 100.0, "ratio": 1.0}

# --------------------------------------------------------------------------------------------
# 2. Cohorts
# --------------------------------------------------------------------------------------------
ASC12_COHORT = ["44388", "44389", "44392", "44394", "44401", "45378", "45380", "45381", "45384",
                "45385", "45388", "G0105", "G0121"]
ASC12_HIGH_RISK = ["44391", "45382", "44405", "45386", "44402", "45389", "44406", "44407", "45391",
                   "45392", "44403", "45390", "44408", "45393", "45398", "44390", "45379"]
ASC12_FALLBACK_LABEL = "Colonoscopy"

# Reconstructed cohorts for ASC-17/18/19.  A 5-digit CPT code is selected when ALL hold:
#   * its AHRQ CCS services-and-procedures category is in `ccs`;
#   * its HCUP surgery flag (2017 ranges) is accepted by `flag_rule`;
#   * the 2025 PFS file (blank modifier) has status A, global period in `global_days`, and
#     0 < work RVU <= `max_work_rvu`;
#   * it falls inside one of `cpt_ranges` (anatomic/sectional restriction to ASC-typical surgery).
COHORT_RULES = {
    "asc17": {
        "ccs": [6, 143, 145, 149, 150, 151, 154, 160, 162],
        "flag_rule": "narrow",
        "global_days": ["010", "090"],
        "max_work_rvu": 20.0,
        "cpt_ranges": [("23000", "23929"), ("24000", "24999"), ("25000", "26999"),
                       ("27301", "27899"), ("28000", "28899"), ("29800", "29999"),
                       ("64702", "64727")],
    },
    "asc18": {
        "ccs": [100, 101, 102, 106, 107, 109, 112, 113, 115, 116, 117, 118],
        "flag_rule": "broad_or_narrow",
        "global_days": ["000", "010", "090"],
        "max_work_rvu": 20.0,
        "cpt_ranges": [("50590", "50590"), ("50950", "50999"), ("51700", "51799"),
                       ("51990", "51999"), ("52000", "53899"), ("54000", "55899")],
    },
    "asc19": {
        "ccs": [10, 12, 67, 80, 81, 84, 85, 86, 87, 94, 96, 99, 165, 166, 167, 168, 169, 170, 171,
                172, 175],
        "flag_rule": "narrow_or_broad_090",
        "global_days": ["000", "010", "090"],
        "max_work_rvu": 20.0,
        "cpt_ranges": [("10000", "13999"), ("19000", "19307"), ("38500", "38550"),
                       ("38740", "38745"), ("44950", "44970"), ("45000", "46999"),
                       ("47562", "47564"), ("49320", "49329"), ("49400", "49436"),
                       ("49491", "49659"), ("60000", "60300")],
    },
}

# CPT codes created after 2017 that the 2017 HCUP surgery-flag ranges cannot cover; they are treated
# as flag 2 (narrow surgery).  All other filters still apply.
POST_2017_SURGERY_CODES = {
    "asc17": [],
    "asc18": ["53854", "55880"],
    "asc19": ["46948"] + [str(c) for c in range(49591, 49597)]
             + [str(c) for c in range(49613, 49619)] + ["49621", "49622"],
}

# ASC-19 procedure types (the five named in the manual's Table 1, plus `other` as the sixth and
# reference category), assigned by CPT range; first match wins.
ASC19_PROC_TYPES = [
    ("wound", [("10030", "10180"), ("11000", "11047"), ("12001", "13999")]),
    ("skin_soft_tissue", [("10000", "10029"), ("11048", "11999")]),
    ("breast", [("19000", "19499")]),
    ("alimentary_tract", [("43000", "46999")]),
    ("abdomen", [("47000", "49999")]),
]
ASC19_PROC_TYPE_OTHER = "other"
ASC19_PROC_TYPE_REFERENCE = "other"

# --------------------------------------------------------------------------------------------
# 3. Risk variables
# --------------------------------------------------------------------------------------------
# ASC-12 same-day procedure variables (HCPCS).  Upper GI endoscopy = EGD family codes present in the
# 2023 or 2025 PFS file; polypectomy = colonoscopy removal (snare / hot biopsy) and ablation codes.
ASC12_EGD_RANGES = [("43235", "43259"), ("43210", "43210"), ("43233", "43233"),
                    ("43266", "43266"), ("43270", "43270")]
ASC12_POLYPECTOMY = ["44392", "44394", "44401", "45384", "45385", "45388"]

# (variable, label, kind, definition, complication_of_care, status)
# For kind=procedure_code the definition "@EGD"/"@POLYP" is expanded below.
RISK_VARIABLES = {
    "asc12": [
        ("age_70_74", "Age 70-74", "age_group", "70-74", "false", "spec"),
        ("age_75_79", "Age 75-79", "age_group", "75-79", "false", "spec"),
        ("age_80_84", "Age 80-84", "age_group", "80-84", "false", "spec"),
        ("age_85_plus", "Age 85+", "age_group", "85+", "false", "spec"),
        ("upper_gi_endoscopy", "Endoscopy during procedure (upper GI)", "procedure_code", "@EGD",
         "false", "reconstructed"),
        ("polypectomy", "Polypectomy during procedure", "procedure_code", "@POLYP", "false",
         "reconstructed"),
        ("chf", "Congestive heart failure", "cc", "85", "false", "reconstructed"),
        ("ischemic_heart_disease", "Ischemic heart disease", "cc", "86|87|88|89", "false",
         "reconstructed"),
        ("stroke_tia", "Stroke/transient ischemic attack (TIA)", "cc", "99|100|101", "true",
         "reconstructed"),
        ("chronic_lung_disease", "Chronic lung disease", "cc", "111|112|113", "false",
         "reconstructed"),
        ("metastatic_cancer", "Metastatic cancer", "cc", "8", "false", "reconstructed"),
        ("liver_disease", "Liver disease", "cc", "27|28|29|30|31", "false", "reconstructed"),
        ("iron_deficiency_anemia", "Iron deficiency anemia", "cc", "49", "false",
         "reconstructed"),
        ("fluid_electrolyte", "Disorders of fluid, electrolyte, acid base", "cc", "24", "true",
         "reconstructed"),
        ("pneumonia", "Pneumonia", "cc", "114|115|116", "true", "reconstructed"),
        ("psychiatric_disorders", "Psychiatric disorders", "cc", "57|58|59|61|63", "false",
         "reconstructed"),
        ("substance_abuse", "Substance abuse", "cc", "54|55|56", "false", "reconstructed"),
        ("arrhythmia", "Arrhythmia", "cc", "96|97", "true", "reconstructed"),
        ("age_70_74_x_arrhythmia", "Age 70-74 x arrhythmia", "interaction",
         "age_70_74*arrhythmia", "false", "spec"),
        ("age_75_79_x_arrhythmia", "Age 75-79 x arrhythmia", "interaction",
         "age_75_79*arrhythmia", "false", "spec"),
        ("age_80_84_x_arrhythmia", "Age 80-84 x arrhythmia", "interaction",
         "age_80_84*arrhythmia", "false", "spec"),
        ("age_85_plus_x_arrhythmia", "Age 85+ x arrhythmia", "interaction",
         "age_85_plus*arrhythmia", "false", "spec"),
    ],
    "asc17": [
        ("age_over_65", "Age (years greater than 65)", "age_years_over_65", "", "false", "spec"),
        ("cancer", "Cancer", "cc", "8|9|10|11|12", "false", "reconstructed"),
        ("fluid_electrolyte", "Disorder of fluid/electrolyte/acid-base", "cc", "24", "true",
         "reconstructed"),
        ("other_gi_disorders", "Other gastrointestinal disorders", "cc", "38", "false",
         "reconstructed"),
        ("bone_joint_muscle_infection", "Bone/joint/muscle infections/necrosis", "cc", "39",
         "true", "reconstructed"),
        ("rheumatoid_osteoarthritis", "Rheumatoid and osteoarthritis", "cc", "40|42", "false",
         "reconstructed"),
        ("dementia", "Dementia", "cc", "51|52", "false", "reconstructed"),
        ("psychiatric_disorders", "Psychiatric disorders", "cc", "57|58|59|61|63", "false",
         "reconstructed"),
        ("multiple_sclerosis", "Multiple sclerosis", "cc", "77", "false", "reconstructed"),
        ("seizure_disorders", "Seizure disorders and convulsions", "cc", "79", "false",
         "reconstructed"),
        ("chf", "Congestive heart failure", "cc", "85", "false", "reconstructed"),
        ("ischemic_heart_disease", "Ischemic heart disease", "cc", "86|87|88|89", "false",
         "reconstructed"),
        ("hypertension", "Hypertension and hypertensive disease", "cc", "94|95", "false",
         "reconstructed"),
        ("stroke", "Stroke", "cc", "99|100", "true", "reconstructed"),
        ("vascular_disease", "Vascular disease", "cc", "106|107|108", "false", "reconstructed"),
        ("chronic_lung_disease", "Chronic lung disease", "cc", "111|112|113", "false",
         "reconstructed"),
        ("pneumonia", "Pneumonia", "cc", "114|115|116", "true", "reconstructed"),
        ("other_respiratory_disorders", "Other respiratory disorders", "cc", "118", "true",
         "reconstructed"),
        ("chronic_renal_disease", "Chronic renal disease", "cc", "134|136|137|138|139", "false",
         "reconstructed"),
        ("chronic_ulcers", "Chronic ulcers", "cc", "157|158|159|160|161", "false",
         "reconstructed"),
        ("head_injury", "Head injury", "cc", "166|167|168", "false", "reconstructed"),
        ("major_fracture_internal_injury", "Major traumatic fracture or internal injury", "cc",
         "169|170|171|172", "false", "reconstructed"),
        ("major_symptoms", "Major symptoms, abnormalities", "cc", "178", "false",
         "reconstructed"),
        ("minor_symptoms", "Minor symptoms, signs, findings", "cc", "179", "false",
         "reconstructed"),
        ("morbid_obesity", "Morbid obesity", "icd10cm", "E6601", "false", "reconstructed"),
        ("opioid_abuse", "Opioid abuse", "icd10cm", "F1110", "false", "reconstructed"),
        ("tobacco_use", "Tobacco use disorder", "icd10cm", "@F172", "false", "reconstructed"),
        ("chronic_anticoagulant", "Chronic anticoagulant use", "icd10cm", "Z7901", "false",
         "reconstructed"),
        ("work_rvu", "Work RVU (surgical procedural complexity)", "work_rvu", "", "false",
         "spec"),
    ],
    "asc18": [
        ("age_over_65", "Age (years greater than 65)", "age_years_over_65", "", "false", "spec"),
        ("bph_with_obstruction", "Benign prostatic hyperplasia with obstruction", "icd10cm",
         "N401", "false", "reconstructed"),
        ("device_graft_complications", "Complications of specified implanted device or graft",
         "cc", "176", "true", "reconstructed"),
        ("poisonings_allergic_reactions", "Poisonings and inflammatory allergic reactions", "cc",
         "175", "true", "reconstructed"),
        ("major_symptoms", "Major symptoms, abnormalities", "cc", "178", "false",
         "reconstructed"),
        ("parkinsons_huntingtons_seizure",
         "Parkinson's and Huntington's diseases; seizure disorders and convulsions", "cc",
         "78|79", "false", "reconstructed"),
        ("ischemic_heart_disease", "Ischemic heart disease", "cc", "86|87|88|89", "false",
         "reconstructed"),
        ("procedures_2", "Number of qualifying procedures: 2 vs 1", "procedure_count", "2",
         "false", "spec"),
        ("procedures_3_plus", "Number of qualifying procedures: 3 or more vs 1",
         "procedure_count", "3+", "false", "spec"),
        ("work_rvu", "Work RVU (surgical procedural complexity)", "work_rvu", "", "false",
         "spec"),
    ],
    "asc19": [
        ("age_over_65", "Age (years greater than 65)", "age_years_over_65", "", "false", "spec"),
        ("proc_type_abdomen", "Procedure type: abdomen and its contents", "procedure_type",
         "abdomen", "false", "reconstructed"),
        ("proc_type_alimentary_tract", "Procedure type: alimentary tract", "procedure_type",
         "alimentary_tract", "false", "reconstructed"),
        ("proc_type_breast", "Procedure type: breast", "procedure_type", "breast", "false",
         "reconstructed"),
        ("proc_type_skin_soft_tissue", "Procedure type: skin/soft tissue", "procedure_type",
         "skin_soft_tissue", "false", "reconstructed"),
        ("proc_type_wound", "Procedure type: wound", "procedure_type", "wound", "false",
         "reconstructed"),
        ("other_benign_tumors", "Other benign tumors", "cc", "15|16", "false", "reconstructed"),
        ("liver_biliary_disease", "Liver or biliary disease", "cc", "27|28|29|30|31|32", "false",
         "reconstructed"),
        ("intestinal_obstruction_perforation", "Intestinal obstruction or perforation", "cc", "33",
         "true", "reconstructed"),
        ("dementia", "Dementia or senility", "cc", "51|52", "false", "reconstructed"),
        ("psychiatric_disorders", "Psychiatric disorders", "cc", "57|58|59|61|63", "false",
         "reconstructed"),
        ("other_cns_disease", "Other significant central nervous system disease", "cc",
         "72|73|74|75|76|77|78|79|80", "false", "reconstructed"),
        ("ischemic_heart_disease", "Ischemic heart disease", "cc", "86|87|88|89", "false",
         "reconstructed"),
        ("arrhythmia", "Specified arrhythmias and other heart rhythm disorders", "cc", "96|97",
         "true", "reconstructed"),
        ("stroke", "Stroke", "cc", "99|100", "true", "reconstructed"),
        ("chronic_lung_disease", "Chronic lung disease", "cc", "111|112|113", "false",
         "reconstructed"),
        ("pneumonia", "Pneumonia", "cc", "114|115|116", "true", "reconstructed"),
        ("dialysis_severe_ckd", "Dialysis or severe chronic kidney disease", "cc", "134|136|137",
         "false", "reconstructed"),
        ("bph", "Benign prostatic hyperplasia", "icd10cm", "@N40", "false", "reconstructed"),
        ("cellulitis", "Cellulitis, local skin infection", "cc", "164", "true", "reconstructed"),
        ("major_fracture_internal_injury", "Major traumatic fracture or internal injury", "cc",
         "169|170|171|172", "false", "reconstructed"),
        ("complications_of_care", "Complications of care", "cc", "176|177", "true",
         "reconstructed"),
        ("chronic_anticoagulant", "Chronic anticoagulant use", "icd10cm", "Z7901", "false",
         "reconstructed"),
        ("work_rvu", "Work RVU (surgical procedural complexity)", "work_rvu", "", "false",
         "spec"),
    ],
}
# icd10cm definitions given as "@PREFIX" expand to every code in the CCS dx list with that prefix.

# --------------------------------------------------------------------------------------------
# 4. Condition categories
# --------------------------------------------------------------------------------------------
# V24 numbers whose 201-set number differs (V24 renumbered these two psychiatric HCCs).
V24_TO_201 = {"58": "59", "59": "58"}
HCC_PY_YEARS = ["2019", "2020", "2021", "2022", "2023", "2024", "2025", "2026"]

# Non-payment CCs rebuilt from ICD-10-CM prefixes, tried IN ORDER, first match wins, and only on
# codes that no V24 payment mapping (any year, any HCC) covers.  Prefix lists are `|`-separated in
# the `source` column.  Injury/poisoning (S, T) codes require 7th character A, B or C (initial
# encounter) so sequelae and subsequent encounters are not counted.
RECONSTRUCTED_CC_RULES = [
    ("30", ["K71", "K720", "K750", "K751", "K763"]),
    ("31", ["B15", "B16", "B17", "B19", "K70", "K72", "K73", "K74", "K75", "K76", "K77"]),
    ("32", ["K80", "K81", "K82", "K83", "K87"]),
    ("24", ["E86", "E87"]),
    ("15", ["D10", "D11", "D16", "D17", "D18", "D19", "D20", "D21", "D25", "D26", "D27",
            "D28", "D29", "D32", "D33", "D34", "D35", "D36"]),
    ("16", ["D22", "D23", "D24", "D31"]),
    ("38", ["K20", "K21", "K22", "K23", "K29", "K30", "K31", "K38", "K40", "K41", "K42", "K43",
            "K44", "K45", "K46", "K57", "K58", "K59", "K60", "K61", "K62", "K63", "K64", "K66",
            "K67", "K90"]),
    ("42", ["M16", "M17"]),
    ("49", ["D50", "D51", "D52", "D53", "D62", "D63", "D64", "D72", "D75"]),
    ("61", ["F32", "F33", "F341"]),
    ("62", ["F40", "F41", "F42", "F431"]),
    ("63", ["F43", "F44", "F45", "F48", "F50", "F51", "F53", "F54", "F59", "F63", "F64", "F65",
            "F66", "F68", "F69", "F99"]),
    ("89", ["I25"]),
    ("94", ["I11", "I13"]),
    ("95", ["I10", "I12", "I15", "I16"]),
    ("97", ["I44", "I45", "I49", "R00"]),
    ("101", ["G45", "I65", "I66"]),
    ("113", ["J45"]),
    ("116", ["J09X1", "J100", "J110", "J12", "J18", "R091"]),
    ("118", ["J22", "J40", "J80", "J81", "J82", "J84", "J85", "J86", "J98", "J99"]),
    ("139", ["N181", "N182", "N189"]),
    ("160", ["L89"]),
    ("164", ["L00", "L01", "L02", "L03", "L04", "L05", "L08"]),
    ("168", ["S060", "S098", "S099"]),
    ("171", ["S32", "S42", "S52", "S72", "S82"]),
    ("172", ["S25", "S26", "S27", "S35", "S36", "S37"]),
    ("175", ["T36", "T37", "T38", "T39", "T40", "T41", "T42", "T43", "T44", "T45", "T46",
             "T47", "T48", "T49", "T50", "T51", "T52", "T53", "T54", "T55", "T56", "T57", "T58",
             "T59", "T60", "T61", "T62", "T63", "T64", "T65", "T78", "T886"]),
    ("177", ["T80", "T81", "T88", "D78", "E36", "E89", "G97", "H59", "H95", "I97", "J95", "K91",
             "L76", "M96", "N99"]),
    ("178", ["R04", "R06", "R07", "R09", "R10", "R11", "R13", "R16", "R17", "R18", "R31",
             "R40", "R41", "R44", "R47", "R50", "R55", "R57", "R58", "R59", "R60", "R63", "R64",
             "R65", "R68", "R78", "R79", "R99"]),
    ("179", ["R"]),
]

# --------------------------------------------------------------------------------------------
# 5. ASC-12 exclusions
# --------------------------------------------------------------------------------------------
IBD_PREFIXES = ["K50", "K51"]
DIVERTICULITIS_PREFIX = "K57"
# the AHRQ file abbreviates descriptions: "Dvtrcli" = diverticulitis, "Dvrtclos" = diverticulosis
DIVERTICULITIS_WORDS = ("diverticulitis", "dvtrcli")

# --------------------------------------------------------------------------------------------
# 6. Outcome tables
# --------------------------------------------------------------------------------------------
HOSPITAL_VISIT_CODES = (
    [("ed", "revenue_center", "045%d" % i) for i in range(10)]
    + [("ed", "revenue_center", "0981"), ("observation", "revenue_center", "0762"),
       ("observation", "hcpcs", "G0378")]
)
ACUTE_CCN_RANGES = [("short_term_acute", "0001", "0879"), ("critical_access", "1300", "1399")]


# ============================================================================================
# helpers
# ============================================================================================
class Ctx:
    def __init__(self, ref, out):
        self.ref = ref
        self.out = out
        self.prov = []  # (derived, source, sha, rows)
        self._sha = {}
        self.verified_missing = []  # (derived_file, code) not found in 2019 CCS lists

    def path(self, rel):
        return os.path.join(self.ref, rel)

    def sha(self, rel):
        if rel not in self._sha:
            h = hashlib.sha256()
            with open(self.path(rel), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._sha[rel] = h.hexdigest()
        return self._sha[rel]

    def write(self, rel_out, header, rows, sources):
        full = os.path.join(self.out, rel_out)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            assert len(r) == len(header), (rel_out, r)
            w.writerow(r)
        with open(full, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        for s in sorted(set(sources)):
            if s.startswith("../") and not os.path.exists(self.path(s)):
                continue
            self.prov.append((rel_out, s, self.sha(s), len(rows)))
        print("wrote %-60s %7d rows" % (rel_out, len(rows)))


def read_dicts(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def unq(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == "'" and s[-1] == "'":
        s = s[1:-1]
    return s.strip()


def norm_code(s):
    return unq(s).replace(".", "").upper()


def in_ranges(code, ranges):
    return any(a <= code <= b for a, b in ranges)


def fmt_num(x):
    s = ("%.6f" % x).rstrip("0")
    return s + "0" if s.endswith(".") else s


# ============================================================================================
# loaders
# ============================================================================================
def load_ccs(ctx, rel):
    rows = read_rows(ctx.path(rel))[1:]
    out = {}
    desc = {}
    for r in rows:
        code = norm_code(r[0])
        out[code] = unq(r[1])
        desc[code] = r[2]
    return out, desc


def load_rvu(ctx, rel):
    out = {}
    for r in read_dicts(ctx.path(rel)):
        if r["modifier"].strip() == "":
            out[r["hcpcs"].strip().upper()] = r
    return out


def load_surgery_flags(ctx):
    rows = read_rows(ctx.path(SRC_SURG_FLAGS))
    flags = []
    for r in rows:
        if len(r) < 2:
            continue
        rng, fl = unq(r[0]), unq(r[1])
        if "-" not in rng or not fl.isdigit():
            continue
        a, b = rng.split("-")
        flags.append((a.strip(), b.strip(), fl))
    return flags


def surgery_flag(flags, code):
    for a, b, fl in flags:
        if len(a) == len(code) and a <= code <= b:
            return fl
    return ""


# ============================================================================================
# derivations
# ============================================================================================
def derive_measures(ctx):
    nat = read_dicts(ctx.path(SRC_NATIONAL))
    nat = [r for r in nat if r["Year"] == "2022"][0]
    fac = [r for r in read_dicts(ctx.path(SRC_FACILITY)) if r["Year"] == "2022"]
    rows = []
    for m in MEASURES:
        name, short, years, unit, col = MEASURE_META[m]
        rate = float(nat[col].replace(",", "")) / UNIT_DIVISOR[unit]
        vols = [int(r["%s Total Cases" % short].replace(",", "")) for r in fac
                if r["%s Total Cases" % short].replace(",", "").isdigit()]
        rows.append([m, name, short, fmt_num(rate), unit, "public", VERSION])
        write_rules(ctx, m, years, min(vols))
    ctx.write("measures/measures.csv",
              ["measure", "name", "short_name", "published_national_rate", "rate_unit", "status",
               "version"],
              rows, [SRC_NATIONAL, SRC_SPEC])


def mdir(m):
    """A measure's definition folder: measures/<measure>/<definition version>/."""
    return "measures/%s/%s" % (m, VERSION)


SPEC_SOURCE = "ASCQR specifications manual v12, %s information form"


def write_rules(ctx, m, years, min_cases):
    """Window lengths, age and enrollment rules, minimum case count: one row per rule."""
    short = MEASURE_META[m][1]
    spec = SPEC_SOURCE % short
    rows = [
        ["min_age_years", "65", "official", spec + ": Medicare FFS patients aged 65 and older"],
        ["enrollment_months_before", "12", "official",
         spec + ": Part A and Part B enrollment in the 12 months before the procedure"],
    ]
    if m != "asc12":
        rows.append(["enrollment_days_after", "7", "official",
                     spec + ": continuous FFS A+B in the 7 days after unless the patient died"])
    rows += [
        ["history_days", "365", "official",
         spec + ": claims in the 12 months before the procedure (risk variables, exclusions)"],
        ["outcome_last_day", "7", "official", spec + ": hospital visits within 7 days (day 0 to 7)"],
        ["index_window_days", "7", "reconstructed",
         "ascqr: a procedure on days 0-7 after the patient's earlier index procedure is not an index"],
    ]
    if m == "asc12":
        rows.append(["repeat_colonoscopy_lookback_days", "7", "reconstructed",
                     "ascqr: a colonoscopy on days 1-7 after another colonoscopy in any setting is "
                     "a repeat, not an index (no public source states the look-back)"])
    if m != "asc12":
        rows.append(["work_rvu_of_several_procedures", "highest", "reconstructed",
                     "ascqr: the claim's highest work RVU among its qualifying codes (or sum)"])
    rows += [
        ["cohort_period_years", str(years), "official", spec + ": performance period"],
        ["min_cases", str(min_cases), "reconstructed",
         "smallest %s Total Cases published in %s" % (short, SRC_FACILITY)],
    ]
    ctx.write(mdir(m) + "/rules.csv", ["rule", "value", "provenance", "source", "version"],
              [r + [VERSION] for r in rows], [SRC_SPEC, SRC_FACILITY])


def asc19_proc_type(code):
    for t, ranges in ASC19_PROC_TYPES:
        if in_ranges(code, ranges):
            return t
    return ASC19_PROC_TYPE_OTHER


def derive_cohorts(ctx, cpt_ccs, cpt_ccs_desc, rvu23, rvu25, flags):
    header = ["hcpcs", "role", "procedure_type", "ccs_category", "work_rvu_2023",
              "work_rvu_2025", "label", "provenance", "source", "version"]

    def rv(tab, c):
        r = tab.get(c)
        return r["work_rvu"].strip() if r else ""

    cohorts = {}
    # ASC-12
    rows = []
    for role, codes in (("cohort", ASC12_COHORT), ("concurrent_high_risk", ASC12_HIGH_RISK)):
        for c in codes:
            rows.append([c, role, "", cpt_ccs.get(c, ""), rv(rvu23, c), rv(rvu25, c),
                         cpt_ccs_desc.get(c, ASC12_FALLBACK_LABEL), "reconstructed",
                         "measure-methodology.md section 2, candidate %s codes" % role.replace("_", " "),
                         VERSION])
    rows.sort(key=lambda r: (r[1], r[0]))
    cohorts["asc12"] = rows
    ctx.write(mdir("asc12") + "/cohort_codes.csv", header, rows,
              [SRC_CPT_CCS, SRC_RVU_2023, SRC_RVU_2025, SRC_METHOD])

    for m in ("asc17", "asc18", "asc19"):
        rule = COHORT_RULES[m]
        rows = []
        for c in sorted(cpt_ccs):
            if not (len(c) == 5 and c.isdigit()):
                continue
            cat = cpt_ccs[c]
            if not cat.isdigit() or int(cat) not in rule["ccs"]:
                continue
            fl = surgery_flag(flags, c)
            if fl == "" and c in POST_2017_SURGERY_CODES[m]:
                fl = "2"
            r25 = rvu25.get(c)
            if r25 is None:
                continue
            g = r25["global_days"].strip()
            if rule["flag_rule"] == "narrow":
                ok = fl == "2"
            elif rule["flag_rule"] == "broad_or_narrow":
                ok = fl in ("1", "2")
            elif rule["flag_rule"] == "narrow_or_broad_090":
                ok = fl == "2" or (fl == "1" and g == "090")
            else:
                raise ValueError(rule["flag_rule"])
            if not ok:
                continue
            if r25["status_code"].strip() != "A" or g not in rule["global_days"]:
                continue
            try:
                w = float(r25["work_rvu"])
            except ValueError:
                continue
            if not (0 < w <= rule["max_work_rvu"]):
                continue
            if not in_ranges(c, rule["cpt_ranges"]):
                continue
            pt = asc19_proc_type(c) if m == "asc19" else ""
            rows.append([c, "cohort", pt, cat, rv(rvu23, c), rv(rvu25, c), cpt_ccs_desc[c],
                         "reconstructed",
                         "AHRQ CCS %s, HCUP surgery flag %s, PFS 2025 status A global %s" % (cat, fl, g),
                         VERSION])
        rows.sort(key=lambda r: (r[1], r[0]))
        cohorts[m] = rows
        ctx.write(mdir(m) + "/cohort_codes.csv", header, rows,
                  [SRC_CPT_CCS, SRC_SURG_FLAGS, SRC_RVU_2023, SRC_RVU_2025])
    return cohorts


def derive_risk_variables(ctx, dx_codes, rvu23, rvu25):
    egd = sorted(c for c in set(rvu23) | set(rvu25)
                 if len(c) == 5 and c.isdigit() and in_ranges(c, ASC12_EGD_RANGES))
    expansions = {"@EGD": "|".join(egd), "@POLYP": "|".join(ASC12_POLYPECTOMY)}
    header = ["variable", "label", "kind", "definition", "complication_of_care", "provenance",
              "source", "version"]
    needed_ccs = set()
    out = {}
    for m in MEASURES:
        rows = []
        seen = set()
        for var, label, kind, defn, coc, status in RISK_VARIABLES[m]:
            assert var not in seen, var
            seen.add(var)
            if defn in expansions:
                defn = expansions[defn]
            elif kind == "icd10cm" and defn.startswith("@"):
                p = defn[1:]
                defn = "|".join(sorted(c for c in dx_codes if c.startswith(p)))
            if kind == "icd10cm":
                for c in defn.split("|"):
                    if c not in dx_codes:
                        raise SystemExit("risk variable %s: %s not in CCS dx list" % (var, c))
            if kind == "cc":
                needed_ccs.update(defn.split("|"))
            if status == "spec":
                prov, src = "official", SPEC_SOURCE % MEASURE_META[m][1] + ", risk variables"
            else:
                prov, src = "reconstructed", ("codes chosen to match the variable's label "
                                              "(measure-methodology.md section 4)")
            rows.append([var, label, kind, defn, coc, prov, src, VERSION])
        out[m] = rows
        # rows keep the manual's Table 1 order (a deterministic, documented order)
        ctx.write(mdir(m) + "/risk_variables.csv", header, rows,
                  [SRC_CCS_DX, SRC_CC_LABELS, SRC_RVU_2023, SRC_RVU_2025, SRC_SPEC]
                  if m == "asc12" else [SRC_CCS_DX, SRC_CC_LABELS, SRC_SPEC])
    return needed_ccs, out


def derive_condition_categories(ctx, dx_codes, needed_ccs):
    labels = read_dicts(ctx.path(SRC_CC_LABELS))
    label_rows = sorted(([r["cc"].strip(), r["label"].strip(), "public", VERSION]
                         for r in labels), key=lambda r: int(r[0]))
    assert len(label_rows) == 201
    ctx.write("condition-categories/cc_labels.csv", ["cc", "label", "status", "version"],
              label_rows, [SRC_CC_LABELS])
    all_ccs = {r[0] for r in label_rows}
    for c in needed_ccs:
        assert c in all_ccs, c

    # payment CCs: V24, latest mapping per code
    ra = defaultdict(set)
    for r in read_dicts(ctx.path(SRC_RA_2026)):
        if r["model_name"].strip() == "CMS-HCC Model V24":
            ra[norm_code(r["diagnosis_code"])].add(r["cc"].strip())
    py = defaultdict(lambda: defaultdict(set))
    for r in read_dicts(ctx.path(SRC_HCC_PY)):
        if r["cms_hcc_v24_flag"].strip() == "Yes" and r["cms_hcc_v24"].strip():
            py[norm_code(r["diagnosis_code"])][r["payment_year"].strip()].add(
                r["cms_hcc_v24"].strip())
    payment = {}
    for code, ccs in ra.items():
        payment[code] = (ccs, os.path.basename(SRC_RA_2026))
    for code, years in py.items():
        if code in payment:
            continue
        y = max(years)
        payment[code] = (years[y], os.path.basename(SRC_HCC_PY))
    covered = set(payment)  # any V24 payment mapping, any HCC

    # Per year: a payment year's table lists every code valid that year, mapped or not, and
    # payment year Y maps the diagnoses of calendar year Y - 1. A code whose needed categories
    # differ between two years in which it exists gets one row per category and run of years;
    # years in which a code does not exist do not bound it (it cannot occur on a claim then).
    exists = defaultdict(set)
    for r in read_dicts(ctx.path(SRC_HCC_PY)):
        exists[norm_code(r["diagnosis_code"])].add(int(r["payment_year"].strip()))
    def needed_of(ccs):
        return {V24_TO_201.get(x, x) for x in ccs} & set(needed_ccs)
    first_year, last_year = int(HCC_PY_YEARS[0]) - 1, int(HCC_PY_YEARS[-1]) - 1

    rows = []
    used_sources = {SRC_RA_2026, SRC_HCC_PY, SRC_CC_LABELS}
    for code in sorted(payment):
        ccs, src = payment[code]
        years = sorted(exists.get(code, ()))
        by_year = {y: needed_of(py[code].get(str(y), set())) for y in years}
        if len({frozenset(v) for v in by_year.values()}) > 1:
            for c in sorted(set().union(*by_year.values()), key=int):
                run = []
                for y in years + [None]:
                    if y is not None and c in by_year[y] and (not run or y == run[-1] + 1):
                        run.append(y)
                        continue
                    if run:
                        lo, hi = run[0] - 1, run[-1] - 1
                        rows.append([code, c, "" if lo <= first_year else str(lo),
                                     "" if hi >= last_year else str(hi),
                                     os.path.basename(SRC_HCC_PY), "cms-v24", VERSION])
                    run = [y] if y is not None and c in by_year[y] else []
            continue
        for c in sorted(needed_of(ccs), key=int):
            rows.append([code, c, "", "", src, "cms-v24", VERSION])
    rule_ccs = {cc for cc, _ in RECONSTRUCTED_CC_RULES}
    for code in sorted(dx_codes):
        if code in covered:
            continue
        for cc, prefixes in RECONSTRUCTED_CC_RULES:
            hit = [p for p in prefixes if code.startswith(p)]
            if not hit:
                continue
            if code[0] in "ST" and not (len(code) == 7 and code[6] in "ABC"):
                break  # injury codes: initial encounter only; no fallthrough
            if cc in needed_ccs:
                src = "reconstructed:" + "|".join(prefixes)
                if any(p[0] in "ST" for p in prefixes):
                    src += " (7th char A/B/C)"
                rows.append([code, cc, "", "", src, "reconstructed", VERSION])
                used_sources.add(SRC_CCS_DX)
            break
    rows.sort(key=lambda r: (r[0], int(r[1]), r[2]))
    ctx.write("condition-categories/icd10cm_to_cc.csv",
              ["icd10cm", "cc", "year_first", "year_last", "source", "status", "version"], rows,
              sorted(used_sources))
    present = Counter(r[1] for r in rows)
    missing = sorted((c for c in needed_ccs if present[c] == 0), key=int)
    nonpayment_without_rule = sorted(
        (c for c in needed_ccs if c not in rule_ccs
         and not any(V24_TO_201.get(x, x) == c for v in payment.values() for x in v[0])),
        key=int)
    return rows, missing, nonpayment_without_rule


EXCLUSION_SOURCE = ("ICD-10-CM K50/K51, or K57 with diverticulitis in the CCS label "
                    "(measure-methodology.md section 2)")


def derive_exclusions(ctx, dx_codes, dx_desc):
    rows = []
    for c in sorted(dx_codes):
        if any(c.startswith(p) for p in IBD_PREFIXES):
            rows.append([c, "inflammatory_bowel_disease",
                         "Crohn's disease" if c.startswith("K50") else "Ulcerative colitis",
                         "reconstructed", EXCLUSION_SOURCE, VERSION])
        elif c.startswith(DIVERTICULITIS_PREFIX) and any(
                w in dx_desc[c].lower() for w in DIVERTICULITIS_WORDS):
            rows.append([c, "diverticulitis", "Diverticulitis", "reconstructed", EXCLUSION_SOURCE,
                         VERSION])
    rows.sort(key=lambda r: (r[1], r[0]))
    ctx.write(mdir("asc12") + "/exclusion_codes.csv",
              ["icd10cm", "exclusion", "label", "provenance", "source", "version"], rows,
              [SRC_CCS_DX, SRC_METHOD])
    return rows


def derive_outcomes(ctx, dx_ccs, pr_ccs):
    def ccs_table(key, outname, col):
        src = SRC_PAA[key]
        rows = [[unq(r[col]), r["description"].strip(), "public", VERSION]
                for r in read_dicts(ctx.path(src))]
        rows.sort(key=lambda r: int(r[0]))
        ctx.write("outcomes/planned_admission/%s.csv" % outname,
                  ["ccs", "label", "status", "version"], rows, [src])

    ccs_table("always_planned_procedure_ccs", "always_planned_procedure_ccs",
              "ccs_procedure_category")
    ccs_table("always_planned_diagnosis_ccs", "always_planned_diagnosis_ccs",
              "ccs_diagnosis_category")
    ccs_table("potentially_planned_procedure_ccs", "potentially_planned_procedure_ccs",
              "ccs_procedure_category")
    ccs_table("acute_diagnosis_ccs", "acute_diagnosis_ccs", "ccs_diagnosis_category")

    src = SRC_PAA["potentially_planned_icd10pcs"]
    codes = sorted({norm_code(r["icd_10_pcs"]) for r in read_dicts(ctx.path(src))})
    for c in codes:
        if c not in pr_ccs:
            ctx.verified_missing.append(("potentially_planned_icd10pcs", c))
    ctx.write("outcomes/planned_admission/potentially_planned_icd10pcs.csv",
              ["icd10pcs", "status", "version"], [[c, "public", VERSION] for c in codes], [src])

    src = SRC_PAA["acute_diagnosis_icd10cm"]
    codes = sorted({norm_code(r["icd_10_cm"]) for r in read_dicts(ctx.path(src))})
    for c in codes:
        if c not in dx_ccs:
            ctx.verified_missing.append(("acute_diagnosis_icd10cm", c))
    ctx.write("outcomes/planned_admission/acute_diagnosis_icd10cm.csv",
              ["icd10cm", "status", "version"], [[c, "public", VERSION] for c in codes], [src])

    ctx.write("outcomes/ccs/icd10cm_to_ccs.csv", ["icd10cm", "ccs", "status", "version"],
              [[c, dx_ccs[c], "public", VERSION] for c in sorted(dx_ccs)], [SRC_CCS_DX])
    ctx.write("outcomes/ccs/icd10pcs_to_ccs.csv", ["icd10pcs", "ccs", "status", "version"],
              [[c, pr_ccs[c], "public", VERSION] for c in sorted(pr_ccs)], [SRC_CCS_PR])

    ctx.write("outcomes/hospital_visit_codes.csv",
              ["kind", "code_system", "code", "status", "version"],
              sorted([k, s, c, "public", VERSION] for k, s, c in HOSPITAL_VISIT_CODES),
              [SRC_REVENUE, SRC_METHOD])
    ctx.write("outcomes/acute_care_ccn_ranges.csv",
              ["kind", "first", "last", "status", "version"],
              sorted(([k, a, b, "public", VERSION] for k, a, b in ACUTE_CCN_RANGES),
                     key=lambda r: r[1]), [SRC_METHOD])


def derive_facility_volumes(ctx):
    fac = [r for r in read_dicts(ctx.path(SRC_FACILITY)) if r["Year"] == "2022"]
    rows = []
    for m in MEASURES:
        short = MEASURE_META[m][1]
        hist = Counter()
        too_small = 0
        for r in fac:
            v = r["%s Total Cases" % short].replace(",", "").strip()
            if v.isdigit():
                hist[int(v)] += 1
            elif r["%s Footnote" % short].strip() == "1":
                too_small += 1
        for v in sorted(hist):
            rows.append([m, str(v), str(hist[v]), "public", VERSION])
        rows.append([m, "", str(too_small), "public", VERSION])
    ctx.write("synth/facility_volumes.csv",
              ["measure", "volume", "facilities", "status", "version"], rows, [SRC_FACILITY])


def write_provenance(ctx):
    rows = sorted(ctx.prov)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["derived_file", "source_file", "source_sha256", "script", "rows"])
    for d, s, h, n in rows:
        w.writerow([d, s, h, SCRIPT, str(n)])
    with open(os.path.join(ctx.out, "PROVENANCE.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    print("wrote PROVENANCE.csv (%d rows)" % len(rows))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="folder with the public reference files")
    ap.add_argument("--out", default=os.path.dirname(here),
                    help="data-dictionary folder (default: parent of this script)")
    a = ap.parse_args()
    ctx = Ctx(os.path.abspath(a.reference), os.path.abspath(a.out))

    dx_ccs, dx_desc = load_ccs(ctx, SRC_CCS_DX)
    pr_ccs, _ = load_ccs(ctx, SRC_CCS_PR)
    cpt = read_dicts(ctx.path(SRC_CPT_CCS))
    cpt_ccs = {r["hcpcs_code"].strip().upper(): r["ccs_category"].strip() for r in cpt}
    cpt_ccs_desc = {r["hcpcs_code"].strip().upper(): r["ccs_category_description"].strip()
                    for r in cpt}
    rvu23 = load_rvu(ctx, SRC_RVU_2023)
    rvu25 = load_rvu(ctx, SRC_RVU_2025)
    flags = load_surgery_flags(ctx)

    derive_measures(ctx)
    derive_cohorts(ctx, cpt_ccs, cpt_ccs_desc, rvu23, rvu25, flags)
    needed, _ = derive_risk_variables(ctx, set(dx_ccs), rvu23, rvu25)
    _, missing, no_rule = derive_condition_categories(ctx, set(dx_ccs), needed)
    derive_exclusions(ctx, set(dx_ccs), dx_desc)
    derive_outcomes(ctx, dx_ccs, pr_ccs)
    derive_facility_volumes(ctx)
    write_provenance(ctx)

    if missing:
        print("WARNING: CCs referenced by risk variables with no crosswalk rows:", missing)
    if no_rule:
        print("WARNING: needed non-payment CCs without a reconstruction rule:", no_rule)
    if ctx.verified_missing:
        c = Counter(k for k, _ in ctx.verified_missing)
        print("note: codes from official PAA tables absent from the 2019.1 CCS lists (kept):",
              dict(sorted(c.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
