// What every row normalizer reports besides the probabilities.
#pragma once

#include <cstddef>

namespace entmax {

/// Summary of one normalized row z -> p.
///
/// `max` is the row maximum m (the shift), `tau` the threshold in shifted coordinates (rounded
/// to T), `support` the number of non-zero outputs and `tau_lo` what T could not hold of the
/// threshold: τ = tau + tau_lo. tau_lo is 0 except for sparsemax and entmax15 rows whose support
/// is deep enough for the rounding of tau to move Σp (see sparsemax.hpp). The stats rebuild p:
/// * α-entmax (sparsemax α = 2, entmax15 α = 1.5): p_i = [((α−1)(z_i − m) − tau) − tau_lo]_+^{1/(α−1)};
/// * softmax: p_i = exp(z_i − m − τ), so τ = log Σ exp(z − m) and m + τ is the log-sum-exp.
/// A row whose scores are all −inf (fully masked) gives p = 0, support = 0, max = −inf. A row
/// with NaN or +inf among its scores gives p = NaN and support = 0.
template <class T>
struct RowStats {
  T max;
  T tau;
  std::size_t support;
  T tau_lo = T(0);
};

}  // namespace entmax
