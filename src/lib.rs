//! # ascqr
//!
//! An open engine for CMS's Ambulatory Surgical Center Quality Reporting (ASCQR) measures.
//! This crate holds all the logic; the `ascqr` binary is a thin command-line layer over it.
//!
//! Modules, one concern each:
//! * [`claims`] — the canonical claims model, readers, validation, the RIF source adapter;
//! * [`dictionary`] — the versioned code tables under `data-dictionary/`, embedded at build time;
//! * [`synth`] — synthetic Medicare claims with a known truth behind them;
//! * [`hglm`] — the two-level hierarchical logistic model (RSPL, Laplace, AGQ) and the bootstrap;
//! * [`standardize`] — predicted/expected, standardized ratios and rates, categories;
//! * [`output`] — files that appear only when complete;
//! * [`saved_model`] — a national fit saved for scoring one ASC's claims later;
//! * [`forecast`] — one ASC's forecast against a saved model: the intercept's posterior, what CMS
//!   would publish with category probabilities, the what-if mode, and the check against a run;
//! * [`pipeline`] — `ascqr run`: every stage for every measure, the manifest;
//! * [`report`] — the shareable facility report and national table (CMS layouts, suppression);
//! * [`web`] — the web-based measures (ASC-1-4, 9, 11, 13, 14, 20) from chart-abstraction records, sampling and the HQR batch file.

pub mod claims;
pub mod cohort;
pub mod dictionary;
pub mod eligibility;
pub mod error;
pub mod forecast;
pub mod hglm;
pub mod memory;
pub mod outcome;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod risk;
pub mod saved_model;
pub mod standardize;
pub mod synth;
pub mod web;

pub use error::{AscqrError, Result};

