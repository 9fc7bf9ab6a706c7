//! The analysis data of a model: one row per procedure (0/1 outcome) or one row per facility ×
//! covariate pattern (events out of cases), always held collapsed to distinct patterns within
//! each facility. Every likelihood in this module is a sum over patterns weighted by their case
//! counts, which is the same number as the sum over procedures — so a row-per-procedure file and
//! its collapsed form give identical fits.

use crate::error::{AscqrError, PolarsContext, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Which columns of the analysis file play which role.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataSpec {
    pub outcome: String,
    pub group: String,
    /// `None`: every column other than outcome, group and cases.
    pub covariates: Option<Vec<String>>,
    /// For a collapsed file: the column holding the number of cases of each row; the outcome is
    /// then the number of events among them.
    pub cases: Option<String>,
}

impl DataSpec {
    /// The analysis file `features` and `run` write: one row per procedure, `outcome` 0/1,
    /// grouped by `facility_id`, with these covariates.
    pub fn analysis_file(covariates: Vec<String>) -> DataSpec {
        DataSpec { outcome: "outcome".into(), group: "facility_id".into(), covariates: Some(covariates), cases: None }
    }
}

/// Collapsed analysis data, patterns sorted by facility then covariate values.
#[derive(Debug, Clone)]
pub struct AnalysisData {
    pub source: PathBuf,
    /// Fixed-effect names, `(Intercept)` first.
    pub names: Vec<String>,
    /// Number of fixed effects (intercept included).
    pub p: usize,
    /// Facility ids in sorted order; a pattern's `group` indexes this.
    pub groups: Vec<String>,
    /// Pattern-major design matrix, `p` values per pattern, first the intercept's 1.
    x: Vec<f64>,
    /// Cases and events of each pattern.
    pub n: Vec<f64>,
    pub y: Vec<f64>,
    pub group: Vec<u32>,
    /// Patterns of facility j are `ranges[j].0 .. ranges[j].1`.
    pub ranges: Vec<(usize, usize)>,
    /// Rows in the input file.
    pub input_rows: u64,
    /// Covariates that take one value in the whole file: not estimable, dropped (and reported).
    pub dropped_constant: Vec<String>,
    /// Columns (ascending) of each pattern's nonzero values: pattern i's are
    /// `nonzero[nonzero_at[i]..nonzero_at[i + 1]]`. Why: risk variables are mostly indicators of
    /// conditions few patients have, so a pattern holds a handful of nonzero values among `p`,
    /// and the sums of every likelihood run over those only. With finite coefficients, skipping
    /// terms that are exactly zero leaves each sum as the dense loop computes it, term for term in
    /// the same order.
    nonzero: Vec<u32>,
    nonzero_at: Vec<usize>,
}

impl AnalysisData {
    pub fn patterns(&self) -> usize {
        self.n.len()
    }
    pub fn xrow(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }
    /// The columns where pattern `i` is not zero, ascending.
    pub fn nonzero(&self, i: usize) -> &[u32] {
        &self.nonzero[self.nonzero_at[i]..self.nonzero_at[i + 1]]
    }
    /// The fixed part of pattern `i`'s linear predictor, `x_i · beta`, over its nonzero values.
    /// Starts, as `Iterator::sum` does, from −0.0, so it equals [`super::linalg::dot`].
    pub fn eta(&self, i: usize, beta: &[f64]) -> f64 {
        let x = self.xrow(i);
        let mut s = -0.0;
        for &k in self.nonzero(i) {
            s += x[k as usize] * beta[k as usize];
        }
        s
    }
    fn index_nonzero(&mut self) {
        let p = self.p;
        let rows = self.n.len();
        self.nonzero.clear();
        self.nonzero_at = Vec::with_capacity(rows + 1);
        self.nonzero_at.push(0);
        for i in 0..rows {
            self.nonzero.extend((0..p).filter(|&k| self.x[i * p + k] != 0.0).map(|k| k as u32));
            self.nonzero_at.push(self.nonzero.len());
        }
    }
    pub fn cases(&self) -> f64 {
        self.n.iter().sum()
    }
    pub fn events(&self) -> f64 {
        self.y.iter().sum()
    }
    pub fn observed_rate(&self) -> f64 {
        self.events() / self.cases()
    }
    /// Cases and events per facility.
    pub fn facility_counts(&self) -> Vec<(f64, f64)> {
        self.ranges
            .iter()
            .map(|&(a, b)| (self.n[a..b].iter().sum(), self.y[a..b].iter().sum()))
            .collect()
    }

    /// Builds collapsed data from rows given in memory (facility id, covariates, cases, events).
    pub fn from_rows(
        source: PathBuf,
        covariate_names: Vec<String>,
        rows: impl IntoIterator<Item = (String, Vec<f64>, f64, f64)>,
    ) -> Result<AnalysisData> {
        let mut input_rows = 0u64;
        let mut items: Vec<(String, Vec<f64>, f64, f64)> = Vec::new();
        for r in rows {
            input_rows += 1;
            items.push(r);
        }
        // Sort by facility, then covariate pattern, then merge equal neighbours.
        items.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                for (x, y) in a.1.iter().zip(&b.1) {
                    match x.total_cmp(y) {
                        std::cmp::Ordering::Equal => continue,
                        o => return o,
                    }
                }
                std::cmp::Ordering::Equal
            })
        });
        let p = covariate_names.len() + 1;
        let mut names = vec!["(Intercept)".to_string()];
        names.extend(covariate_names);
        let mut data = AnalysisData {
            source,
            names,
            p,
            groups: vec![],
            x: vec![],
            n: vec![],
            y: vec![],
            group: vec![],
            ranges: vec![],
            input_rows,
            dropped_constant: vec![],
            nonzero: vec![],
            nonzero_at: vec![],
        };
        let mut last: Option<(String, Vec<f64>)> = None;
        for (g, xs, n, y) in items {
            let same = matches!(&last, Some((lg, lx)) if *lg == g && lx.iter().zip(&xs).all(|(a, b)| a.to_bits() == b.to_bits()));
            if same {
                let k = data.n.len() - 1;
                data.n[k] += n;
                data.y[k] += y;
                continue;
            }
            if last.as_ref().map(|(lg, _)| lg != &g).unwrap_or(true) {
                let start = data.n.len();
                if let Some(r) = data.ranges.last_mut() {
                    r.1 = start;
                }
                data.groups.push(g.clone());
                data.ranges.push((start, start));
            }
            data.x.push(1.0);
            data.x.extend_from_slice(&xs);
            data.n.push(n);
            data.y.push(y);
            data.group.push((data.groups.len() - 1) as u32);
            last = Some((g, xs));
        }
        let end = data.n.len();
        if let Some(r) = data.ranges.last_mut() {
            r.1 = end;
        }
        if data.groups.is_empty() {
            return Err(AscqrError::Other(format!("{}: no rows to fit", data.source.display())));
        }
        data.drop_constant_covariates();
        data.index_nonzero();
        Ok(data)
    }

    /// Removes covariates with a single value across all patterns (their coefficient is not
    /// identifiable next to the intercept) and records their names.
    fn drop_constant_covariates(&mut self) {
        let p = self.p;
        let rows = self.n.len();
        let keep: Vec<usize> = (0..p)
            .filter(|&k| k == 0 || (0..rows).any(|i| self.x[i * p + k] != self.x[k]))
            .collect();
        if keep.len() == p {
            return;
        }
        self.dropped_constant = (1..p).filter(|k| !keep.contains(k)).map(|k| self.names[k].clone()).collect();
        let mut x = Vec::with_capacity(rows * keep.len());
        for i in 0..rows {
            x.extend(keep.iter().map(|&k| self.x[i * p + k]));
        }
        self.x = x;
        self.names = keep.iter().map(|&k| self.names[k].clone()).collect();
        self.p = keep.len();
    }

    /// Reads an analysis file (CSV or Parquet).
    pub fn read(path: &Path, spec: &DataSpec) -> Result<AnalysisData> {
        let df = read_frame(path)?;
        let columns: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
        let need = |c: &str| -> Result<()> {
            if columns.iter().any(|x| x == c) {
                Ok(())
            } else {
                Err(AscqrError::MissingColumn { file: path.to_path_buf(), table: "analysis".into(), column: c.to_string() })
            }
        };
        need(&spec.outcome)?;
        need(&spec.group)?;
        if let Some(c) = &spec.cases {
            need(c)?;
        }
        let covariates: Vec<String> = match &spec.covariates {
            Some(list) => {
                for c in list {
                    need(c)?;
                }
                list.clone()
            }
            None => {
                // "All others": every other numeric (or 0/1 boolean) column; text columns such as
                // procedure ids are left out and named in the log.
                let others: Vec<String> = columns
                    .iter()
                    .filter(|c| **c != spec.outcome && **c != spec.group && Some(*c) != spec.cases.as_ref())
                    .cloned()
                    .collect();
                let (numeric, text): (Vec<String>, Vec<String>) = others.into_iter().partition(|c| {
                    df.column(c).map(|s| s.dtype().is_primitive_numeric() || s.dtype() == &DataType::Boolean || s.dtype() == &DataType::String && path.extension().and_then(|e| e.to_str()) == Some("csv")).unwrap_or(false)
                });
                if !text.is_empty() {
                    tracing::info!("{}: not covariates (not numeric): {}", path.display(), text.join(", "));
                }
                numeric
            }
        };
        let outcome = numeric_column(&df, path, &spec.outcome)?;
        let cases = match &spec.cases {
            Some(c) => Some(numeric_column(&df, path, c)?),
            None => None,
        };
        let group = text_column(&df, path, &spec.group)?;
        let xs: Vec<Vec<f64>> = covariates.iter().map(|c| numeric_column(&df, path, c)).collect::<Result<_>>()?;
        let mut rows = Vec::with_capacity(df.height());
        for i in 0..df.height() {
            let row = i as u64 + 1;
            let bad = |column: &str, value: String, expected: &str| AscqrError::BadValue {
                file: path.to_path_buf(),
                row,
                column: column.to_string(),
                value,
                expected: expected.to_string(),
            };
            let y = outcome[i];
            let n = match &cases {
                Some(c) => {
                    let n = c[i];
                    if !(n >= 1.0 && n.fract() == 0.0) {
                        return Err(bad(spec.cases.as_deref().unwrap_or(""), n.to_string(), "a positive whole number of cases"));
                    }
                    if !(y >= 0.0 && y <= n && y.fract() == 0.0) {
                        return Err(bad(&spec.outcome, y.to_string(), "a whole number of events between 0 and the cases"));
                    }
                    n
                }
                None => {
                    if y != 0.0 && y != 1.0 {
                        return Err(bad(&spec.outcome, y.to_string(), "0 or 1"));
                    }
                    1.0
                }
            };
            let g = group[i].clone().ok_or_else(|| bad(&spec.group, String::new(), "a facility id"))?;
            let mut x = Vec::with_capacity(xs.len());
            for (k, col) in xs.iter().enumerate() {
                let v = col[i];
                if !v.is_finite() {
                    return Err(bad(&covariates[k], if v.is_nan() { String::new() } else { v.to_string() }, "a finite number"));
                }
                x.push(v);
            }
            rows.push((g, x, n, y));
        }
        AnalysisData::from_rows(path.to_path_buf(), covariates, rows)
    }
}

fn read_frame(path: &Path) -> Result<DataFrame> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let ctx = || format!("reading {}", path.display());
    if !path.exists() {
        return Err(AscqrError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "file not found")));
    }
    match ext.as_str() {
        "parquet" => {
            let f = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e))?;
            ParquetReader::new(f).finish().ctx(ctx)
        }
        "csv" => LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .finish()
            .and_then(|lf| lf.collect())
            .ctx(ctx),
        _ => Err(AscqrError::InvalidOption(format!("{}: expected a .csv or .parquet analysis file", path.display()))),
    }
}

/// A column as f64 values; NaN marks a missing value. Text is parsed, with the first bad value
/// reported by row.
fn numeric_column(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<f64>> {
    let col = df.column(name).ctx(|| format!("reading {}", path.display()))?;
    match col.dtype() {
        DataType::String => {
            let ca = col.str().ctx(|| path.display().to_string())?;
            ca.iter()
                .enumerate()
                .map(|(i, v)| match v.map(str::trim) {
                    None | Some("") => Ok(f64::NAN),
                    Some(t) => t.parse::<f64>().map_err(|_| AscqrError::BadValue {
                        file: path.to_path_buf(),
                        row: i as u64 + 1,
                        column: name.to_string(),
                        value: t.to_string(),
                        expected: "a number".into(),
                    }),
                })
                .collect()
        }
        DataType::Boolean => {
            let ca = col.bool().ctx(|| path.display().to_string())?;
            Ok(ca.iter().map(|v| v.map(|b| b as u8 as f64).unwrap_or(f64::NAN)).collect())
        }
        dt if dt.is_primitive_numeric() => {
            let c = col.cast(&DataType::Float64).ctx(|| path.display().to_string())?;
            Ok(c.f64().ctx(|| path.display().to_string())?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        }
        other => Err(AscqrError::ColumnType {
            file: path.to_path_buf(),
            column: name.to_string(),
            found: other.to_string(),
            expected: "a number".into(),
        }),
    }
}

fn text_column(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<Option<String>>> {
    let col = df.column(name).ctx(|| format!("reading {}", path.display()))?;
    let c = col.cast(&DataType::String).ctx(|| path.display().to_string())?;
    Ok(c.str().ctx(|| path.display().to_string())?.iter().map(|v| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_collapse_to_patterns_within_facilities() {
        let rows = vec![
            ("b".to_string(), vec![1.0], 1.0, 1.0),
            ("a".to_string(), vec![0.0], 1.0, 0.0),
            ("a".to_string(), vec![1.0], 1.0, 1.0),
            ("a".to_string(), vec![0.0], 1.0, 1.0),
            ("b".to_string(), vec![1.0], 1.0, 0.0),
        ];
        let d = AnalysisData::from_rows("t".into(), vec!["x".into()], rows).unwrap();
        assert_eq!(d.groups, vec!["a", "b"]);
        assert_eq!(d.n, vec![2.0, 1.0, 2.0]);
        assert_eq!(d.y, vec![1.0, 1.0, 1.0]);
        assert_eq!(d.ranges, vec![(0, 2), (2, 3)]);
        assert_eq!(d.xrow(1), &[1.0, 1.0]);
        assert_eq!(d.input_rows, 5);
    }

    /// Each pattern lists the columns where it is not zero (the intercept always, a constant
    /// covariate never once dropped), and its linear predictor over them is the dense dot
    /// product bit for bit, negative values and a zero predictor included.
    #[test]
    fn patterns_list_their_nonzero_columns_and_their_linear_predictor_equals_the_dense_one() {
        let rows = vec![
            ("a".to_string(), vec![0.0, 0.0, 7.0], 1.0, 0.0),
            ("a".to_string(), vec![1.0, 0.0, 7.0], 1.0, 1.0),
            ("b".to_string(), vec![0.0, 2.5, 7.0], 1.0, 0.0),
            ("b".to_string(), vec![1.0, -1.0, 7.0], 1.0, 1.0),
        ];
        let d = AnalysisData::from_rows("t".into(), vec!["x".into(), "z".into(), "constant".into()], rows).unwrap();
        assert_eq!(d.dropped_constant, vec!["constant"]);
        let listed: Vec<Vec<u32>> = (0..d.patterns()).map(|i| d.nonzero(i).to_vec()).collect();
        assert_eq!(listed, vec![vec![0], vec![0, 1], vec![0, 2], vec![0, 1, 2]]);
        for beta in [[0.3, -1.7, 0.25], [0.0, 0.0, 0.0], [-0.5, 0.5, 0.2]] {
            for i in 0..d.patterns() {
                let dense = super::super::linalg::dot(d.xrow(i), &beta);
                assert_eq!(d.eta(i, &beta).to_bits(), dense.to_bits(), "pattern {i}, beta {beta:?}");
            }
        }
    }
}
