// Built with -fno-exceptions: invalid calls go to the handler set with entmax::set_error_handler
// (or to the default one, which prints and aborts). Each case is a separate run,
// `test_no_exceptions <case>`; CTest matches what the run prints.
#include <entmax/asentmax.hpp>
#include <entmax/eigen.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/error.hpp>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace {

const char* kind_name(entmax::ErrorKind kind) {
  return kind == entmax::ErrorKind::domain_error ? "domain_error" : "invalid_argument";
}

// Reports the call and ends the program successfully: the handler must not return.
void exiting_handler(entmax::ErrorKind kind, const char* message) {
  std::printf("kind=%s message=%s\n", kind_name(kind), message);
  std::fflush(stdout);
  std::exit(0);
}

// Returns to entmax, which must then abort rather than carry on.
void returning_handler(entmax::ErrorKind kind, const char* message) {
  std::printf("handler returned to entmax (kind=%s message=%s)\n", kind_name(kind), message);
  std::fflush(stdout);
}

// The default handler and a returning handler end in std::abort(): report it and exit
// normally, so that CTest sees the output rather than a crash.
extern "C" void on_abort(int) {
  static const char text[] = "std::abort called\n";
  std::fflush(stderr);
  std::fwrite(text, 1, sizeof text - 1, stdout);
  std::fflush(stdout);
  std::_Exit(0);
}

void continued() {
  std::printf("continued after an invalid call\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: test_no_exceptions <case>\n");
    return 2;
  }
  const char* which = argv[1];
  float z[4] = {1.0f, 0.5f, -1.0f, 0.25f};
  float p[4] = {7, 7, 7, 7};
  if (std::strcmp(which, "alpha") == 0) {
    entmax::set_error_handler(&exiting_handler);
    entmax::entmax_bisect(z, p, 4, 1.0f);
    continued();
  } else if (std::strcmp(which, "shape") == 0) {
    entmax::set_error_handler(&exiting_handler);
    Eigen::MatrixXf zm = Eigen::MatrixXf::Zero(2, 3), pm(3, 2);
    entmax::normalize_rows(entmax::Softmax{}, zm, pm);
    continued();
  } else if (std::strcmp(which, "beta") == 0) {
    entmax::set_error_handler(&exiting_handler);
    entmax::asentmax(z, p, 4, 1.5f, std::numeric_limits<float>::quiet_NaN(), 1.0f, 1.0f, 5);
    continued();
  } else if (std::strcmp(which, "default") == 0) {
    std::signal(SIGABRT, &on_abort);
    entmax::entmax_bisect(z, p, 4, 0.5f);
    continued();
  } else if (std::strcmp(which, "returning") == 0) {
    std::signal(SIGABRT, &on_abort);
    entmax::set_error_handler(&returning_handler);
    entmax::entmax_bisect(z, p, 4, std::numeric_limits<float>::infinity());
    continued();
  } else if (std::strcmp(which, "valid") == 0) {
    entmax::set_error_handler(&exiting_handler);
    entmax::entmax_bisect(z, p, 4, 1.5f);
    const double sum = double(p[0]) + p[1] + p[2] + p[3];
    if (std::fabs(sum - 1) > 1e-6 || !(p[0] > p[1])) {
      std::printf("wrong result: sum %.9g\n", sum);
      return 1;
    }
    std::printf("valid call: ok\n");
  } else {
    std::fprintf(stderr, "unknown case %s\n", which);
    return 2;
  }
  // An invalid call that reaches this point was not reported: the contract is broken.
  return 0;
}
