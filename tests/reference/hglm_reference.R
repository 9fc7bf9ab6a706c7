# Generates the reference fixtures for the hierarchical logistic model tests.
#
#   Rscript tests/reference/hglm_reference.R            (from the repository root)
#
# For each data set it writes tests/fixtures/hglm/<name>/data.csv and reference.csv with
#   * lme4::glmer Laplace (nAGQ = 1) and adaptive Gauss-Hermite (nAGQ = 9) maximum likelihood;
#   * glmmTMB (Laplace) as a second ML reference;
#   * RSPL by the textbook algorithm: working response and weights from the current linear
#     predictor, each step a REML linear mixed fit with the residual variance fixed at 1 and
#     precision weights w, iterated to convergence. The inner REML fit is glmmTMB (gaussian,
#     REML = TRUE, dispersion parameter mapped to log sigma = 0). nlme::lme with
#     lmeControl(sigma = 1) was tried first and does NOT minimise the textbook REML criterion
#     when sigma is fixed (on common_small's first linearization it returns sigma^2 = 0.09777
#     where the REML criterion, evaluated densely, is minimal at 0.09501 — and glmmTMB gives
#     0.09501), so it is not used.
# lme4's own convergence check is recorded (term "converged": 1 or 0): when lme4 reports that it
# did not converge, the tests require our log-likelihood to be no lower than lme4's and compare
# the estimates with glmmTMB instead.
# reference.csv columns: method, term, estimate, std_error (terms: the fixed effects,
# "sigma" = random-intercept SD, "objective" = log-likelihood for ML, -2 res log PL for RSPL,
# "iterations").
# Needs Debian packages r-base-core r-cran-lme4 r-cran-glmmtmb. The fixtures are
# committed, so `cargo test` does not need R.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
})

out_root <- "tests/fixtures/hglm"

simulate <- function(seed, n_fac, size_fun, beta, tau, covariates) {
  set.seed(seed)
  sizes <- size_fun(n_fac)
  g <- rep(sprintf("F%04d", seq_len(n_fac)), sizes)
  u <- rep(rnorm(n_fac, 0, tau), sizes)
  n <- length(g)
  X <- sapply(covariates, function(f) f(n))
  if (is.null(dim(X))) X <- matrix(X, ncol = length(covariates))
  colnames(X) <- names(covariates)
  eta <- beta[1] + X %*% beta[-1] + u
  y <- rbinom(n, 1, plogis(eta))
  d <- data.frame(facility = g, y = y, X)
  d
}

bin <- function(p) function(n) rbinom(n, 1, p)
age <- function(n) sample(0:25, n, replace = TRUE)

datasets <- list(
  common_small = list(seed = 11, n_fac = 30, size = function(k) sample(20:60, k, TRUE),
                      beta = c(-1.6, 0.5, -0.4, 0.03), tau = 0.5,
                      cov = list(chf = bin(0.2), female = bin(0.55), age_over_65 = age)),
  rare_outcome = list(seed = 12, n_fac = 150, size = function(k) round(exp(runif(k, log(30), log(600)))),
                      beta = c(-4.9, 0.6, 0.4, 0.8, 0.02), tau = 0.3,
                      cov = list(chf = bin(0.15), arrhythmia = bin(0.1), polypectomy = bin(0.4), age_over_65 = age)),
  # tau = 0, and the first seed from 13 on whose lme4 Laplace fit is on the boundary (SD 0).
  near_zero_variance = list(seed = 13, n_fac = 40, size = function(k) sample(30:80, k, TRUE),
                            beta = c(-2.0, 0.7), tau = 0.0, cov = list(chf = bin(0.3)), boundary = TRUE),
  facilities_without_events = list(seed = 14, n_fac = 80, size = function(k) sample(5:40, k, TRUE),
                                   beta = c(-3.2, 0.9, 0.5), tau = 0.6,
                                   cov = list(chf = bin(0.25), smoker = bin(0.3))),
  large_facilities = list(seed = 15, n_fac = 12, size = function(k) sample(1500:2500, k, TRUE),
                          beta = c(-3.0, 0.4, 0.25), tau = 0.25,
                          cov = list(chf = bin(0.2), work_rvu = function(n) sample(c(2.5, 4.1, 7.3), n, TRUE)))
)

fmt <- function(x) formatC(x, digits = 15, format = "g")

rspl <- function(d, covs, maxit = 200, tol = 1e-10) {
  form <- as.formula(paste("y ~", paste(covs, collapse = " + ")))
  g0 <- glm(form, family = binomial, data = d)
  eta <- as.numeric(predict(g0))
  zform <- as.formula(paste("z ~", paste(covs, collapse = " + "), "+ (1 | facility)"))
  old_beta <- coef(g0); old_s2 <- NA
  for (it in seq_len(maxit)) {
    mu <- plogis(eta); w <- mu * (1 - mu)
    d$z <- eta + (d$y - mu) / w
    d$w <- w
    fit <- glmmTMB(zform, data = d, weights = w, family = gaussian, REML = TRUE,
                   start = list(betad = 0), map = list(betad = factor(NA)),
                   control = glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14)))
    beta <- fixef(fit)$cond
    s2 <- as.numeric(VarCorr(fit)$cond$facility[1, 1])
    eta <- as.numeric(predict(fit))
    done <- max(abs(beta - old_beta) / pmax(abs(old_beta), 1e-3)) < tol &&
      !is.na(old_s2) && abs(s2 - old_s2) / max(old_s2, 1e-6) < max(tol, 1e-9)
    old_beta <- beta; old_s2 <- s2
    if (done) break
  }
  # Model-based standard errors of the final linearized model, (X' V^-1 X)^-1 at the final
  # sigma^2 (GLIMMIX's default). glmmTMB's REML vcov also carries the variance parameter's
  # uncertainty, so it is computed here directly, facility by facility (Woodbury identity).
  mu <- plogis(eta); w <- mu * (1 - mu)
  X <- model.matrix(as.formula(paste("~", paste(covs, collapse = " + "))), d)
  M <- crossprod(X * sqrt(w))
  for (idx in split(seq_len(nrow(d)), d$facility)) {
    bj <- colSums(X[idx, , drop = FALSE] * w[idx]); sj <- sum(w[idx])
    M <- M - (s2 / (1 + s2 * sj)) * tcrossprod(bj)
  }
  se <- sqrt(diag(solve(M)))
  # The textbook -2 residual log pseudo-likelihood of the final linearized model, with the
  # working response of each procedure: log|V| + log|X'V^-1 X| + r'V^-1 r + (N - p) log(2 pi).
  # (glmmTMB's own logLik for this model uses other constants.)
  z <- eta + (d$y - mu) / w
  r <- z - as.numeric(X %*% beta)
  logdetV <- -sum(log(w)); rVr <- sum(w * r^2)
  for (idx in split(seq_len(nrow(d)), d$facility)) {
    sj <- sum(w[idx]); tj <- sum(w[idx] * r[idx])
    logdetV <- logdetV + log1p(s2 * sj)
    rVr <- rVr - (s2 / (1 + s2 * sj)) * tj^2
  }
  objective <- logdetV + as.numeric(determinant(M)$modulus) + rVr + (nrow(d) - ncol(X)) * log(2 * pi)
  list(beta = beta, se = se, sigma = sqrt(s2), objective = objective, iterations = it)
}

for (name in names(datasets)) {
  spec <- datasets[[name]]
  covs <- names(spec$cov)
  form <- as.formula(paste("y ~", paste(covs, collapse = " + "), "+ (1 | facility)"))
  seed <- spec$seed
  repeat {
    d <- simulate(seed, spec$n_fac, spec$size, spec$beta, spec$tau, spec$cov)
    if (is.null(spec$boundary)) break
    m0 <- suppressMessages(glmer(form, data = d, family = binomial))
    if (attr(VarCorr(m0)$facility, "stddev") < 1e-6) break
    seed <- seed + 1
  }
  dir.create(file.path(out_root, name), recursive = TRUE, showWarnings = FALSE)
  write.csv(d, file.path(out_root, name, "data.csv"), row.names = FALSE, quote = FALSE)
  rows <- list()
  add <- function(method, term, est, se = NA) {
    rows[[length(rows) + 1]] <<- data.frame(method = method, term = term, estimate = fmt(est),
                                            std_error = ifelse(is.na(se), "", fmt(se)))
  }
  ctrl <- glmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5),
                       check.conv.singular = "ignore")
  for (nagq in c(1, 9)) {
    m <- glmer(form, data = d, family = binomial, nAGQ = nagq, control = ctrl)
    method <- if (nagq == 1) "lme4_laplace" else "lme4_agq9"
    b <- fixef(m); se <- sqrt(diag(as.matrix(vcov(m))))
    for (k in seq_along(b)) add(method, names(b)[k], b[k], se[k])
    add(method, "sigma", as.numeric(attr(VarCorr(m)$facility, "stddev")))
    add(method, "objective", as.numeric(logLik(m)))
    add(method, "converged", as.numeric(length(m@optinfo$conv$lme4$messages) == 0))
  }
  tmb <- glmmTMB(form, data = d, family = binomial)
  b <- fixef(tmb)$cond; se <- sqrt(diag(vcov(tmb)$cond))
  for (k in seq_along(b)) add("glmmtmb_laplace", names(b)[k], b[k], se[k])
  add("glmmtmb_laplace", "sigma", as.numeric(attr(VarCorr(tmb)$cond$facility, "stddev")))
  add("glmmtmb_laplace", "objective", as.numeric(logLik(tmb)))
  r <- rspl(d, covs)
  for (k in seq_along(r$beta)) add("rspl_glmmtmb", names(r$beta)[k], r$beta[k], r$se[k])
  add("rspl_glmmtmb", "sigma", r$sigma)
  add("rspl_glmmtmb", "objective", r$objective)
  add("rspl_glmmtmb", "iterations", r$iterations)
  ref <- do.call(rbind, rows)
  write.csv(ref, file.path(out_root, name, "reference.csv"), row.names = FALSE, quote = FALSE)
  cat(name, " (seed ", seed, "): ", nrow(d), " rows, ", length(unique(d$facility)), " facilities, ", sum(d$y), " events\n", sep = "")
}
cat("R:", R.version.string, " lme4", as.character(packageVersion("lme4")),
    " glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
