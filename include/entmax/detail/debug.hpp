// Opt-in debug checks (define ENTMAX_DEBUG=1): input scans and post-conditions of row maps.
// With ENTMAX_DEBUG=0 (the default) every function here is an empty inline no-op.
#pragma once

#include <entmax/config.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

namespace entmax::detail {

/// Debug mode: raises domain_error if any score is NaN or +inf (−inf marks a masked entry).
template <class T>
inline void debug_check_scores(const char* fn, const T* z, std::size_t n) {
#if ENTMAX_DEBUG
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(z[i]) || z[i] == std::numeric_limits<T>::infinity()) {
      raise(ErrorKind::domain_error, message(fn, ": debug check: score ", i, " is ", z[i]));
    }
  }
#else
  (void)fn, (void)z, (void)n;
#endif
}

/// Debug mode: raises domain_error if any value of a gradient input is not finite.
template <class T>
inline void debug_check_finite(const char* fn, const char* name, const T* x, std::size_t n) {
#if ENTMAX_DEBUG
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      raise(ErrorKind::domain_error, message(fn, ": debug check: ", name, "[", i, "] is ", x[i]));
    }
  }
#else
  (void)fn, (void)name, (void)x, (void)n;
#endif
}

/// Debug mode: raises domain_error if a backward's inputs p or dp hold a non-finite value.
template <class T>
inline void debug_check_backward(const char* fn, const T* p, const T* dp, std::size_t n) {
  debug_check_finite(fn, "p", p, n);
  debug_check_finite(fn, "dp", dp, n);
}

/// Debug mode: checks a forward result of a row with finite maximum: 0 <= p <= 1, Σp = 1 within
/// n·ε (accumulated in long double), a non-empty support that matches the count of non-zeros,
/// and, for α-entmax (alpha > 1), τ inside its bracket [−1, −n^{1−α}] (with n·ε slack).
/// Pass alpha = 1 for softmax (no bracket check).
template <class T>
inline void debug_check_row(const char* fn, const T* p, std::size_t n, const RowStats<T>& s, double alpha) {
#if ENTMAX_DEBUG
  if (n == 0 || !std::isfinite(s.max)) return;  // empty, fully masked or NaN row: nothing to certify
  long double sum = 0;
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(p[i] >= T(0) && p[i] <= T(1))) {
      raise(ErrorKind::domain_error, message(fn, ": debug check: p[", i, "] = ", p[i], " outside [0, 1]"));
    }
    sum += p[i];
    nonzero += p[i] != T(0);
  }
  const long double slack = static_cast<long double>(n + 16) * std::numeric_limits<T>::epsilon();
  if (std::fabs(sum - 1.0L) > slack) {
    raise(ErrorKind::domain_error, message(fn, ": debug check: sum of p is ", static_cast<double>(sum)));
  }
  if (s.support == 0 || s.support != nonzero) {
    raise(ErrorKind::domain_error,
          message(fn, ": debug check: support ", s.support, " but ", nonzero, " non-zero outputs"));
  }
  if (alpha > 1) {
    const long double lo = -1 - slack;
    const long double hi = -std::pow(static_cast<long double>(n), 1.0L - alpha) + slack;
    if (!(s.tau >= lo && s.tau <= hi)) {
      raise(ErrorKind::domain_error,
            message(fn, ": debug check: tau ", s.tau, " outside [-1, -n^(1-alpha)]"));
    }
  }
#else
  (void)fn, (void)p, (void)n, (void)s, (void)alpha;
#endif
}

}  // namespace entmax::detail
