//! Small dense linear algebra for p × p systems (p = number of fixed effects, tens at most).
//! Matrices are row-major `Vec<f64>` of length p².

/// Cholesky factor L (lower, row-major) of a symmetric positive-definite matrix, or `None` when
/// the matrix is not positive definite.
pub fn cholesky(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    Some(l)
}

/// Solves L Lᵀ x = b given the Cholesky factor.
pub fn cholesky_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..p {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    y
}

/// log det of the matrix whose Cholesky factor is `l`.
pub fn cholesky_logdet(l: &[f64], p: usize) -> f64 {
    (0..p).map(|i| 2.0 * l[i * p + i].ln()).sum()
}

/// Inverse of a symmetric positive-definite matrix from its Cholesky factor.
pub fn cholesky_inverse(l: &[f64], p: usize) -> Vec<f64> {
    let mut inv = vec![0.0; p * p];
    let mut e = vec![0.0; p];
    for j in 0..p {
        e.iter_mut().for_each(|x| *x = 0.0);
        e[j] = 1.0;
        let col = cholesky_solve(l, p, &e);
        for i in 0..p {
            inv[i * p + j] = col[i];
        }
    }
    inv
}

/// xᵀ A x for row-major A.
pub fn quad_form(a: &[f64], p: usize, x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..p {
        let mut r = 0.0;
        for j in 0..p {
            r += a[i * p + j] * x[j];
        }
        s += x[i] * r;
    }
    s
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The logistic function, computed without overflow.
pub fn logistic(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^eta) without overflow.
pub fn log1p_exp(eta: f64) -> f64 {
    if eta > 35.0 {
        eta
    } else if eta < -35.0 {
        eta.exp()
    } else {
        eta.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((r - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let inv = cholesky_inverse(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((r - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let det = 4.0 * (5.0 * 3.0 - 1.0) - 2.0 * (2.0 * 3.0 - 0.6) + 0.6 * (2.0 - 5.0 * 0.6);
        assert!((cholesky_logdet(&l, 3) - f64::ln(det)).abs() < 1e-12);
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn logistic_is_stable_at_the_extremes() {
        assert_eq!(logistic(800.0), 1.0);
        assert_eq!(logistic(-800.0), 0.0);
        assert!((log1p_exp(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(log1p_exp(100.0), 100.0);
    }
}
