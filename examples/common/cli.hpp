// Command-line options shared by the dispersion, attention and quickstart examples.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace entmax_examples {

/// What every example accepts: `--check` (a short run that asserts its claims), `--out DIR` (where
/// CSV files go; default ./out, and none in --check mode unless --out is given) and `--max-log2 K`
/// (largest length 2^K of the length sweeps).
struct CliOptions {
  bool check = false;
  std::string out_dir = "out";  // empty: write no files
  int max_log2 = -1;            // -1: the example's default
};

/// Parses argv; prints usage and exits on --help or an unknown argument.
inline CliOptions parse_cli(int argc, char** argv, const char* summary) {
  CliOptions o;
  auto usage = [&](int code) {
    std::printf("%s\n\nusage: %s [--check] [--out DIR] [--max-log2 K]\n", summary, argv[0]);
    std::printf("  --check       short run that asserts the printed claims (exit code 1 on failure)\n");
    std::printf("  --out DIR     directory for the CSV files (default ./out; --check alone writes none)\n");
    std::printf("  --max-log2 K  largest sequence length 2^K in the length sweeps\n");
    std::exit(code);
  };
  bool out_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check") {
      o.check = true;
    } else if (a == "--out" && i + 1 < argc) {
      o.out_dir = argv[++i];
      out_given = true;
    } else if (a == "--max-log2" && i + 1 < argc) {
      o.max_log2 = std::atoi(argv[++i]);
      if (o.max_log2 < 1 || o.max_log2 > 26) usage(2);
    } else if (a == "--help" || a == "-h") {
      usage(0);
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
      usage(2);
    }
  }
  if (o.check && !out_given) o.out_dir.clear();
  return o;
}

}  // namespace entmax_examples
