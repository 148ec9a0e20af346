# The R side of benchmarks/compare.py: a small loop that reads a case name per line on stdin,
# runs it once, and answers with one JSON line {"seconds": ..., "numbers": {...}}.
# The data come from the JSON file compare.py writes (argument 1), so both sides fit the same
# numbers. Timing is system.time() around the call only, as compare.py times its own calls.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
d <- fromJSON(commandArgs(trailingOnly = TRUE)[1])

timed <- function(expr_fn) {
  out <- NULL
  t <- system.time(out <- expr_fn())[["elapsed"]]
  list(seconds = t, numbers = out)
}
reml_k <- function(k) function() {
  y <- d$iv[[as.character(k)]]
  r <- rma(y$yi, y$vi, method = "REML", test = "z"); ci <- confint(r)
  list(tau2 = r$tau2, b = as.numeric(r$b), tau2_ci_lb = ci$random["tau^2", "ci.lb"])
}
glmm_k <- function(k) function() {
  g <- d$glmm[[as.character(k)]]
  r <- rma.glmm(measure = "PLO", xi = g$events, ni = g$n)
  list(b = as.numeric(r$b), se = r$se, tau2 = r$tau2)
}
cases <- list(
  reml_knha_14 = function() {
    y <- d$iv[["14"]]
    r <- rma(y$yi, y$vi, method = "REML", test = "knha"); ci <- confint(r); p <- predict(r)
    list(b = as.numeric(r$b), se = r$se, tau2 = r$tau2, tau2_ci_lb = ci$random["tau^2", "ci.lb"], pi_lb = p$pi.lb)
  },
  dl_14 = function() {
    y <- d$iv[["14"]]; r <- rma(y$yi, y$vi, method = "DL", test = "z")
    list(b = as.numeric(r$b), se = r$se, tau2 = r$tau2)
  },
  pm_14 = function() {
    y <- d$iv[["14"]]; r <- rma(y$yi, y$vi, method = "PM", test = "z")
    list(b = as.numeric(r$b), se = r$se, tau2 = r$tau2)
  },
  glmm_2 = glmm_k(2), glmm_14 = glmm_k(14), glmm_50 = glmm_k(50),
  reml_1000 = reml_k(1000),
  leave1out_200 = function() {
    y <- d$iv[["200"]]; l <- leave1out(rma(y$yi, y$vi, method = "REML"))
    list(first_estimate = l$estimate[1], max_tau2 = max(l$tau2))
  },
  permutest_14 = function() {
    y <- d$iv[["14"]]; set.seed(1)
    p <- permutest(rma(y$yi, y$vi, method = "REML"), iter = 1000, progbar = FALSE)
    list(pval = as.numeric(p$pval))
  },
  gosh_16 = function() {
    y <- d$iv[["16"]]; set.seed(1)
    g <- gosh(rma(y$yi, y$vi, method = "REML"), subsets = 2000, progbar = FALSE)
    list(subsets = nrow(g$res), mean_estimate = mean(g$res$estimate, na.rm = TRUE))
  }
)
cat("ready\n"); flush(stdout())
con <- file("stdin")
open(con)
while (length(line <- readLines(con, n = 1)) > 0) {
  res <- tryCatch(timed(cases[[line]]), error = function(e) list(error = conditionMessage(e)))
  cat(toJSON(res, auto_unbox = TRUE, digits = NA), "\n", sep = ""); flush(stdout())
}
