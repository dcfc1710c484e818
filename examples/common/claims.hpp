// Claims an example asserts in --check mode: each prints one line, a failed one makes main fail.
#pragma once

#include <cstdarg>
#include <cstdio>

namespace entmax_examples {

/// Collects pass/fail results. `claim(ok, fmt, ...)` prints "  ok    <text>" or "  FAIL  <text>";
/// `exit_code()` is 0 only when every claim held.
class Claims {
 public:
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  bool
  claim(bool ok, const char* fmt, ...) {
    std::va_list args;
    va_start(args, fmt);
    std::printf("  %-5s ", ok ? "ok" : "FAIL");
    std::vprintf(fmt, args);
    std::printf("\n");
    va_end(args);
    ++count_;
    if (!ok) ++failed_;
    return ok;
  }
  int count() const { return count_; }
  int failed() const { return failed_; }
  /// Prints a summary line and returns the process exit code.
  int finish(const char* program) const {
    if (failed_ == 0) {
      std::printf("%s: all %d claims hold\n", program, count_);
      return 0;
    }
    std::fprintf(stderr, "%s: %d of %d claims FAILED (lines marked FAIL above)\n", program, failed_, count_);
    return 1;
  }

 private:
  int count_ = 0;
  int failed_ = 0;
};

}  // namespace entmax_examples
