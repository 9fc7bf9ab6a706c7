# Fits the benchmark analysis file with lme4 (Laplace) or glmmTMB and prints time and estimates.
#   Rscript scripts/bench_lme4.R FILE glmer|glmmtmb
suppressPackageStartupMessages({ library(lme4); library(glmmTMB) })
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
covs <- setdiff(names(d), c("facility", "y"))
form <- as.formula(paste("y ~", paste(covs, collapse = " + "), "+ (1 | facility)"))
t0 <- proc.time()[["elapsed"]]
if (args[2] == "glmer") {
  m <- glmer(form, data = d, family = binomial, nAGQ = 1)
  ll <- as.numeric(logLik(m)); sd <- attr(VarCorr(m)$facility, "stddev"); b <- fixef(m)
} else {
  m <- glmmTMB(form, data = d, family = binomial)
  ll <- as.numeric(logLik(m)); sd <- attr(VarCorr(m)$cond$facility, "stddev"); b <- fixef(m)$cond
}
el <- proc.time()[["elapsed"]] - t0
cat(sprintf("%s seconds %.2f loglik %.6f sd %.6f intercept %.6f x01 %.6f\n", args[2], el, ll, sd, b[1], b[2]))
