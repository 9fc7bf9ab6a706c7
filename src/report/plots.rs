//! SVG charts of a measure's facility results, drawn with plotters' SVG backend: a funnel plot
//! (rate against case volume with control limits around the national value) and a caterpillar
//! plot (facilities ranked by rate with their bootstrap intervals, coloured by category).
//!
//! Only facilities with at least the measure's minimum case count are drawn: the others are not
//! published, and a point at 3 cases would disclose a count the shareable outputs suppress.

use crate::error::{AscqrError, Result};
use plotters::prelude::*;

/// One published facility of a claims measure, in the measure's published unit.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotFacility {
    pub cases: f64,
    pub value: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub category: String,
}

/// The national value the facilities are compared with, in the published unit, and how the
/// funnel's limits widen with volume.
#[derive(Debug, Clone, Copy)]
pub struct Benchmark {
    /// National observed rate as a proportion (the limits' binomial variance uses it).
    pub national_rate: f64,
    /// Multiplier from a proportion to the published unit (1000, 100) — or `None` for a ratio.
    pub scale: Option<f64>,
}

impl Benchmark {
    /// The centre line in the published unit.
    pub fn centre(&self) -> f64 {
        match self.scale {
            Some(s) => self.national_rate * s,
            None => 1.0,
        }
    }

    /// Control limit at `z` for a facility with `n` cases: p ± z·√(p(1−p)/n) for a rate, and for
    /// a standardized ratio (observed/expected at the national rate) 1 ± z·√((1−p)/(n·p)).
    pub fn limit(&self, n: f64, z: f64) -> f64 {
        let p = self.national_rate;
        match self.scale {
            Some(s) => (p + z * (p * (1.0 - p) / n).sqrt()).max(0.0) * s,
            None => (1.0 + z * ((1.0 - p) / (n * p)).sqrt()).max(0.0),
        }
    }
}

fn colour(category: &str) -> RGBColor {
    if category.starts_with("Better") {
        RGBColor(33, 102, 172)
    } else if category.starts_with("Worse") {
        RGBColor(178, 24, 43)
    } else {
        RGBColor(110, 110, 110)
    }
}

fn plot_error<E: std::fmt::Debug>(e: E) -> AscqrError {
    AscqrError::Other(format!("drawing a chart: {e:?}"))
}

fn value_range(values: impl Iterator<Item = f64>, centre: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (centre, centre);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    ((lo - pad).max(0.0), hi + pad)
}

/// Funnel plot: each facility's value against its cases, the national value, and 95% and 99.8%
/// limits.
pub fn funnel_svg(title: &str, y_label: &str, facilities: &[PlotFacility], benchmark: Benchmark) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let max_cases = facilities.iter().map(|f| f.cases).fold(10.0, f64::max) * 1.05;
        let min_cases = facilities.iter().map(|f| f.cases).fold(max_cases, f64::min).max(1.0);
        let steps: Vec<f64> = (0..=200).map(|i| min_cases + (max_cases - min_cases) * i as f64 / 200.0).collect();
        let limits = |z: f64| steps.iter().map(move |&n| (n, benchmark.limit(n, z))).collect::<Vec<_>>();
        let (y0, y1) = value_range(
            facilities.iter().map(|f| f.value).chain(limits(3.09).into_iter().map(|p| p.1)).chain(limits(-3.09).into_iter().map(|p| p.1)),
            benchmark.centre(),
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_cases, y0..y1)
            .map_err(plot_error)?;
        chart.configure_mesh().x_desc("cases (facility volume)").y_desc(y_label).light_line_style(WHITE).draw().map_err(plot_error)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(vec![(0.0, benchmark.centre()), (max_cases, benchmark.centre())], BLACK.stroke_width(1)))
            .map_err(plot_error)?
            .label("national")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        for (z, style, label) in [(1.96, grey.stroke_width(1), "95% limits"), (3.09, grey.stroke_width(2), "99.8% limits")] {
            chart.draw_series(LineSeries::new(limits(z), style)).map_err(plot_error)?.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            chart.draw_series(LineSeries::new(limits(-z), style)).map_err(plot_error)?;
        }
        chart
            .draw_series(facilities.iter().map(|f| Circle::new((f.cases, f.value), 3, colour(&f.category).filled())))
            .map_err(plot_error)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(grey).draw().map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Caterpillar plot: facilities ranked by value, each with its interval, coloured by category.
pub fn caterpillar_svg(title: &str, y_label: &str, facilities: &[PlotFacility], benchmark: Benchmark) -> Result<String> {
    let mut ranked: Vec<&PlotFacility> = facilities.iter().collect();
    ranked.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let n = ranked.len().max(1) as f64;
        let (y0, y1) = value_range(ranked.iter().flat_map(|f| [Some(f.value), f.low, f.high]).flatten(), benchmark.centre());
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)
            .map_err(plot_error)?;
        chart.configure_mesh().x_desc("facilities ranked by rate").y_desc(y_label).light_line_style(WHITE).draw().map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(vec![(-0.5, benchmark.centre()), (n - 0.5, benchmark.centre())], BLACK.stroke_width(1)))
            .map_err(plot_error)?;
        chart
            .draw_series(ranked.iter().enumerate().filter_map(|(i, f)| {
                let (lo, hi) = (f.low?, f.high?);
                Some(PathElement::new(vec![(i as f64, lo), (i as f64, hi)], colour(&f.category).stroke_width(1)))
            }))
            .map_err(plot_error)?;
        chart
            .draw_series(ranked.iter().enumerate().map(|(i, f)| Circle::new((i as f64, f.value), 2, colour(&f.category).filled())))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facilities() -> Vec<PlotFacility> {
        vec![
            PlotFacility { cases: 40.0, value: 10.0, low: Some(6.0), high: Some(15.0), category: "No Different Than the National Rate".into() },
            PlotFacility { cases: 400.0, value: 4.0, low: Some(3.0), high: Some(7.0), category: "Better Than the National Rate".into() },
        ]
    }

    #[test]
    fn limits_narrow_with_volume_and_surround_the_centre() {
        let rate = Benchmark { national_rate: 0.01, scale: Some(1000.0) };
        assert!((rate.centre() - 10.0).abs() < 1e-12);
        assert!(rate.limit(100.0, 1.96) > rate.limit(1000.0, 1.96));
        assert!(rate.limit(1000.0, -1.96) < 10.0 && rate.limit(1000.0, 1.96) > 10.0);
        let ratio = Benchmark { national_rate: 0.03, scale: None };
        assert_eq!(ratio.centre(), 1.0);
        // 1 + 1.96·√(0.97 / (100·0.03))
        assert!((ratio.limit(100.0, 1.96) - (1.0 + 1.96 * (0.97f64 / 3.0).sqrt())).abs() < 1e-12);
    }

    #[test]
    fn charts_are_svg_with_one_mark_per_facility_in_its_category_colour() {
        let b = Benchmark { national_rate: 0.01, scale: Some(1000.0) };
        let funnel = funnel_svg("ASC-12", "per 1,000", &facilities(), b).unwrap();
        assert!(funnel.starts_with("<svg") && funnel.contains("</svg>"));
        assert!(funnel.contains("99.8% limits"));
        let cater = caterpillar_svg("ASC-12", "per 1,000", &facilities(), b).unwrap();
        assert_eq!(cater.matches("<circle").count(), 2);
        assert!(cater.to_lowercase().contains("#2166ac"), "the better facility is blue");
    }
}
