// Row-count validation for policies that hold per-row parameters (ASEntmax's β and γ, …).
#pragma once

#include <entmax/error.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace entmax::detail {

template <class N, class = void>
struct has_accepts_rows : std::false_type {};
template <class N>
struct has_accepts_rows<N, std::void_t<decltype(bool{std::declval<const N&>().accepts_rows(std::size_t{})})>>
    : std::true_type {};

/// Throws std::invalid_argument (naming `fn`) when a policy with per-row parameters, i.e. one
/// with `bool accepts_rows(std::size_t rows) const`, does not cover `rows` score rows: reading
/// them would run past its arrays. Policies without per-row parameters pass.
template <class N>
void check_policy_rows(const char* fn, const N& norm, std::size_t rows) {
  if constexpr (has_accepts_rows<N>::value) {
    if (!norm.accepts_rows(rows)) {
      raise(ErrorKind::invalid_argument,
            message(fn, ": the normalizer's per-row parameters do not match the ", rows,
                    " score rows (batch x heads x queries)"));
    }
  }
}

}  // namespace entmax::detail
