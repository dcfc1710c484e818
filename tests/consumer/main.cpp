// Uses entmax the way code outside the repository does: one include, the public names only.
#include <entmax/entmax.hpp>

#include <cstdio>

int main() {
  static_assert(ENTMAX_VERSION >= 100, "entmax version macro");
  int failures = 0;
  std::printf("entmax %d.%d.%d consumer: %s\n", ENTMAX_VERSION_MAJOR, ENTMAX_VERSION_MINOR,
              ENTMAX_VERSION_PATCH, failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
