// How entmax reports invalid calls: exceptions, or a handler when exceptions are off.
#pragma once

#include <entmax/config.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <type_traits>

#if ENTMAX_HAS_EXCEPTIONS
#include <stdexcept>
#endif

namespace entmax {

/// The kind of an invalid call: a shape or option error, or a parameter outside its domain.
enum class ErrorKind { invalid_argument, domain_error };

/// Called instead of throwing when exceptions are disabled (`-fno-exceptions`). It must not
/// return; if it does, entmax calls std::abort().
using ErrorHandler = void (*)(ErrorKind kind, const char* message);

namespace detail {
inline void default_error_handler(ErrorKind, const char* message) {
  std::fprintf(stderr, "entmax: %s\n", message);
  std::abort();
}
inline ErrorHandler& error_handler_slot() {
  static ErrorHandler handler = &default_error_handler;
  return handler;
}
}  // namespace detail

/// Installs the handler used when exceptions are disabled; returns the previous one. The
/// default prints the message to stderr and aborts. Not thread-safe against concurrent calls.
inline ErrorHandler set_error_handler(ErrorHandler handler) {
  ErrorHandler previous = detail::error_handler_slot();
  detail::error_handler_slot() = handler ? handler : &detail::default_error_handler;
  return previous;
}

namespace detail {

/// The scalar types the kernels are written for. Public entry points static_assert on it:
/// `static_assert(detail::is_supported_scalar_v<T>, "entmax::sparsemax: T must be float or double");`
template <class T>
inline constexpr bool is_supported_scalar_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// Raises `message` as std::invalid_argument / std::domain_error, or calls the handler.
[[noreturn]] inline void raise(ErrorKind kind, const std::string& message) {
#if ENTMAX_HAS_EXCEPTIONS
  if (kind == ErrorKind::domain_error) throw std::domain_error(message);
  throw std::invalid_argument(message);
#else
  error_handler_slot()(kind, message.c_str());
  std::abort();
#endif
}

/// Concatenates the pieces with operator<< (full precision for floating-point values).
template <class... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << parts);
  return out.str();
}

/// `fn: alpha must be > 1 (got a)`; alpha = 1 is softmax.
template <class T>
void check_alpha(const char* fn, T alpha) {
  if (!(std::isfinite(alpha) && alpha > T(1))) {
    raise(ErrorKind::domain_error,
          message(fn, ": alpha must be > 1 (got ", alpha, "); use softmax for alpha = 1"));
  }
}

/// `fn: <name> must be finite (got v)`.
template <class T>
void check_finite(const char* fn, const char* name, T value) {
  if (!std::isfinite(value)) {
    raise(ErrorKind::domain_error, message(fn, ": ", name, " must be finite (got ", value, ")"));
  }
}

/// `fn: <name> must be finite and > 0 (got v)`.
template <class T>
void check_positive(const char* fn, const char* name, T value) {
  if (!(std::isfinite(value) && value > T(0))) {
    raise(ErrorKind::domain_error, message(fn, ": ", name, " must be finite and > 0 (got ", value, ")"));
  }
}

}  // namespace detail
}  // namespace entmax
