//! The example saved models shipped under `models/synthetic-national/` load, carry the embedded
//! dictionary's definition version, say they are synthetic, and hold a usable covariance.

use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::saved_model::SavedModel;
use std::path::Path;

#[test]
fn shipped_synthetic_models_load_and_match_the_embedded_dictionary() {
    let dict = Dictionary::embedded().unwrap();
    for m in MeasureId::ALL {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/synthetic-national").join(m.as_str());
        let model = SavedModel::load(&dir).unwrap();
        assert_eq!(model.measure, m);
        model.check_dictionary(dict).unwrap();
        assert!(model.is_synthetic() && model.label.starts_with("SYNTHETIC"), "{}", model.label);
        assert!(model.converged, "{m}");
        assert_eq!(model.coefficient_names[0], "(Intercept)");
        let cov = model.coefficient_covariance.as_ref().expect("a covariance");
        for (i, row) in cov.iter().enumerate() {
            assert!(row[i] > 0.0, "{m}: variance of {} is {}", model.coefficient_names[i], row[i]);
            for (j, v) in row.iter().enumerate() {
                assert!((v - cov[j][i]).abs() <= 1e-9 * v.abs().max(1e-12), "{m}: covariance not symmetric at {i},{j}");
            }
        }
        // Every covariate of the model is one of the measure's variables.
        let names: Vec<&str> = model.variables.iter().map(|v| v.name.as_str()).collect();
        assert!(model.coefficient_names[1..].iter().all(|c| names.contains(&c.as_str())), "{m}");
    }
}
