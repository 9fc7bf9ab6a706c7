//! Sampling for ASC-9, ASC-11 and ASC-13 (manual Section 2, L2003-2044; Step 3 L2503-2508).
//!
//! Choices (digest A9):
//! * The tier is chosen by the facility's population for the whole year, even when sampling
//!   quarterly or monthly.
//! * ≥ 901 per year, monthly: 8 — the monthly cell is blank in the extracted table and a stray
//!   "8" sits after its footnotes (L2038); 96/12 = 8.
//! * A period (year, quarter, month) with fewer cases than required contributes all its cases
//!   (the manual states the small-population rule only per year, L2036).
//! * The population is the measure's population before exclusions (outcome not
//!   `NotInPopulation`).
//! * Method: simple random sampling without replacement per period — a partial Fisher–Yates
//!   shuffle over the period's encounters sorted by encounter_id, with a ChaCha8 stream seeded
//!   from the user's seed and a hash of (facility, measure, period), so the same inputs and seed
//!   always give the same sample and `ascqr web sample` reproduces `ascqr web`'s sample.

use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// "For ASCs with fewer than 63 cases, the total population of cases is required." (L2036)
pub const WHOLE_POPULATION_BELOW: usize = 63;
/// Upper end of the 0–900 tier (L2011, L2024).
pub const SMALL_TIER_MAX: usize = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    Year,
    Quarter,
    Month,
}

impl Frequency {
    /// The SAMP_FREQ value written to the HQR file: Y, Q or M (our encoding; the official batch
    /// layout document that would define it was not available, manual L2064-2065).
    pub fn code(&self) -> &'static str {
        match self {
            Frequency::Year => "Y",
            Frequency::Quarter => "Q",
            Frequency::Month => "M",
        }
    }

    pub fn from_code(code: &str) -> Option<Frequency> {
        match code {
            "Y" => Some(Frequency::Year),
            "Q" => Some(Frequency::Quarter),
            "M" => Some(Frequency::Month),
            _ => None,
        }
    }

    /// `year`, `quarter` or `month` (CLI spelling).
    pub fn parse(name: &str) -> Option<Frequency> {
        match name.to_ascii_lowercase().as_str() {
            "year" | "yearly" | "y" => Some(Frequency::Year),
            "quarter" | "quarterly" | "q" => Some(Frequency::Quarter),
            "month" | "monthly" | "m" => Some(Frequency::Month),
            _ => None,
        }
    }

    /// The period (0-based) of the year a date falls in.
    pub fn period_of(&self, date: NaiveDate) -> u32 {
        match self {
            Frequency::Year => 0,
            Frequency::Quarter => date.month0() / 3,
            Frequency::Month => date.month0(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRequirement {
    WholePopulation,
    PerPeriod(usize),
}

/// Table 3 (manual L2006-2038).
pub fn required_sample(population_per_year: usize, frequency: Frequency) -> SampleRequirement {
    if population_per_year < WHOLE_POPULATION_BELOW {
        return SampleRequirement::WholePopulation;
    }
    let small = population_per_year <= SMALL_TIER_MAX;
    SampleRequirement::PerPeriod(match (frequency, small) {
        (Frequency::Year, true) => 63,
        (Frequency::Quarter, true) => 16,
        (Frequency::Month, true) => 6,
        (Frequency::Year, false) => 96,
        (Frequency::Quarter, false) => 24,
        (Frequency::Month, false) => 8,
    })
}

/// One case offered to the sampler.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub encounter_id: String,
    pub encounter_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SampleDraw {
    pub population_size: usize,
    pub sample_size: usize,
    pub frequency: Frequency,
    /// Indices into the candidates, ascending.
    pub selected: Vec<usize>,
}

/// FNV-1a: a stable, dependency-free hash for deriving per-stream seeds.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn period_rng(seed: u64, stream: &str, period: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&format!("{stream}|{period}")))
}

/// Draws the sample. `stream` names the facility and measure (e.g. "1234567893|ASC-9").
pub fn draw_sample(candidates: &[Candidate], frequency: Frequency, seed: u64, stream: &str) -> SampleDraw {
    let requirement = required_sample(candidates.len(), frequency);
    let mut selected = Vec::new();
    let periods: std::collections::BTreeSet<u32> = candidates.iter().map(|c| frequency.period_of(c.encounter_date)).collect();
    for period in periods {
        let mut pool: Vec<usize> = (0..candidates.len()).filter(|&i| frequency.period_of(candidates[i].encounter_date) == period).collect();
        pool.sort_by(|&a, &b| candidates[a].encounter_id.cmp(&candidates[b].encounter_id));
        let take = match requirement {
            SampleRequirement::WholePopulation => pool.len(),
            SampleRequirement::PerPeriod(n) => n.min(pool.len()),
        };
        let mut rng = period_rng(seed, stream, period);
        for i in 0..take {
            let j = rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        selected.extend_from_slice(&pool[..take]);
    }
    selected.sort_unstable();
    SampleDraw { population_size: candidates.len(), sample_size: selected.len(), frequency, selected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize) -> Vec<Candidate> {
        let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        (0..n).map(|i| Candidate { encounter_id: format!("E{i:05}"), encounter_date: start + chrono::Duration::days((i % 365) as i64) }).collect()
    }

    #[test]
    fn required_sizes_at_the_tier_boundaries() {
        use Frequency::*;
        assert_eq!(required_sample(62, Year), SampleRequirement::WholePopulation);
        assert_eq!(required_sample(0, Month), SampleRequirement::WholePopulation);
        assert_eq!(required_sample(63, Year), SampleRequirement::PerPeriod(63));
        assert_eq!(required_sample(900, Year), SampleRequirement::PerPeriod(63));
        assert_eq!(required_sample(900, Quarter), SampleRequirement::PerPeriod(16));
        assert_eq!(required_sample(900, Month), SampleRequirement::PerPeriod(6));
        assert_eq!(required_sample(901, Year), SampleRequirement::PerPeriod(96));
        assert_eq!(required_sample(901, Quarter), SampleRequirement::PerPeriod(24));
        assert_eq!(required_sample(901, Month), SampleRequirement::PerPeriod(8));
    }

    #[test]
    fn drawn_sizes_follow_the_table_and_small_periods_give_everything() {
        assert_eq!(draw_sample(&candidates(62), Frequency::Year, 1, "s").sample_size, 62);
        assert_eq!(draw_sample(&candidates(63), Frequency::Year, 1, "s").sample_size, 63);
        assert_eq!(draw_sample(&candidates(900), Frequency::Year, 1, "s").sample_size, 63);
        assert_eq!(draw_sample(&candidates(901), Frequency::Year, 1, "s").sample_size, 96);
        assert_eq!(draw_sample(&candidates(901), Frequency::Quarter, 1, "s").sample_size, 96);
        assert_eq!(draw_sample(&candidates(901), Frequency::Month, 1, "s").sample_size, 96);
        assert_eq!(draw_sample(&candidates(900), Frequency::Month, 1, "s").sample_size, 72);
        // 70 cases all in January: January gives 6, no other month has cases.
        let mut jan = candidates(70);
        for c in &mut jan {
            c.encounter_date = NaiveDate::from_ymd_opt(2023, 1, 15).unwrap();
        }
        assert_eq!(draw_sample(&jan, Frequency::Month, 1, "s").sample_size, 6);
        // 64 cases, all in the first quarter: only that quarter's 16.
        let d = draw_sample(&candidates(64), Frequency::Quarter, 1, "s");
        assert_eq!((d.population_size, d.sample_size, d.frequency), (64, 16, Frequency::Quarter));
    }

    #[test]
    fn same_seed_same_sample_different_seed_different_sample() {
        let c = candidates(500);
        let a = draw_sample(&c, Frequency::Year, 7, "npi|ASC-9");
        assert_eq!(a, draw_sample(&c, Frequency::Year, 7, "npi|ASC-9"));
        assert_ne!(a.selected, draw_sample(&c, Frequency::Year, 8, "npi|ASC-9").selected);
        assert_ne!(a.selected, draw_sample(&c, Frequency::Year, 7, "npi|ASC-13").selected);
        // Input order does not matter: the sampler sorts by encounter_id.
        let mut reversed = c.clone();
        reversed.reverse();
        let ids = |cs: &[Candidate], d: &SampleDraw| {
            let mut v: Vec<String> = d.selected.iter().map(|&i| cs[i].encounter_id.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&c, &a), ids(&reversed, &draw_sample(&reversed, Frequency::Year, 7, "npi|ASC-9")));
        let mut unique = a.selected.clone();
        unique.dedup();
        assert_eq!(unique.len(), 63);
    }
}
