// Naive long-double references for the row-scaled maps (ASEntmax, scalable softmax) and the
// Fenchel–Young losses, plus a minimal reader for golden records of one op. Deliberately simple.
#pragma once

#include "reference/alpha.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ref_scaled {

using ld = long double;

/// s = δ + β · log(npos)^γ.
inline ld asentmax_scale(ld beta, ld gamma, ld delta, std::size_t npos) {
  return delta + beta * std::pow(std::log(static_cast<ld>(npos)), gamma);
}

/// c · z elementwise (−inf stays −inf for c > 0).
template <class T>
std::vector<ld> scaled(const T* z, std::size_t n, ld c) {
  std::vector<ld> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = c * static_cast<ld>(z[i]);
  return out;
}

/// α-entmax of a long-double row (ref_alpha's bisection).
inline std::vector<ld> entmax(const std::vector<ld>& z, ld alpha) {
  return ref_alpha::entmax_alpha(z.data(), z.size(), alpha).p;
}

/// Softmax in long double; −inf entries get 0; an all −inf row gives zeros.
inline std::vector<ld> softmax(const std::vector<ld>& z) {
  const std::size_t n = z.size();
  std::vector<ld> p(n, 0.0L);
  ld m = -std::numeric_limits<ld>::infinity();
  for (ld v : z) m = std::max(m, v);
  if (n == 0 || m == -std::numeric_limits<ld>::infinity()) return p;
  ld s = 0;
  for (std::size_t i = 0; i < n; ++i) s += (p[i] = std::exp(z[i] - m));
  for (ld& v : p) v /= s;
  return p;
}

/// Softmax vector-Jacobian product p ⊙ (dp − ⟨p, dp⟩).
inline std::vector<ld> softmax_backward(const std::vector<ld>& p, const std::vector<ld>& dp) {
  ld c = 0;
  for (std::size_t i = 0; i < p.size(); ++i) c += p[i] * dp[i];
  std::vector<ld> dz(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) dz[i] = p[i] * (dp[i] - c);
  return dz;
}

/// ⟨a, b⟩ in long double.
template <class A, class B>
ld dot(const std::vector<A>& a, const std::vector<B>& b) {
  ld s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<ld>(a[i]) * static_cast<ld>(b[i]);
  return s;
}

/// Support size (non-zero count).
inline std::size_t support(const std::vector<ld>& p) {
  std::size_t k = 0;
  for (ld v : p) k += v != 0;
  return k;
}

/// Fenchel–Young loss in long double, by its definition max_p ⟨p, z⟩ + H(p) − z_y, evaluated at
/// the reference p*: Shannon H for alpha == 1, Tsallis otherwise. +inf if z_y = −inf.
inline ld fy_loss(const std::vector<ld>& z, std::size_t y, ld alpha) {
  if (z[y] == -std::numeric_limits<ld>::infinity()) return std::numeric_limits<ld>::infinity();
  const std::vector<ld> p = alpha == 1 ? softmax(z) : entmax(z, alpha);
  ld h = 0, lin = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    if (p[i] == 0) continue;
    h += alpha == 1 ? -p[i] * std::log(p[i]) : std::pow(p[i], alpha);
    lin += p[i] * z[i];
  }
  if (alpha != 1) h = (1 - h) / (alpha * (alpha - 1));
  return h + lin - z[y];
}

/// One golden record: header fields and named number lines.
struct Record {
  std::map<std::string, std::string> fields;
  std::map<std::string, std::vector<double>> data;
  double field(const std::string& k) const { return std::stod(fields.at(k)); }
};

/// All records of `op` in the golden file (lines "key=value ..." then "name v1 v2 ...").
inline std::vector<Record> read_golden(const std::string& path, const std::string& op) {
  std::ifstream in(path);
  std::vector<Record> out;
  std::string line;
  Record cur;
  bool active = false;
  auto flush = [&] {
    if (active) out.push_back(cur);
    cur = Record{};
    active = false;
  };
  auto parse_num = [](const std::string& t) {
    if (t == "-inf") return -std::numeric_limits<double>::infinity();
    if (t == "inf") return std::numeric_limits<double>::infinity();
    if (t == "nan") return std::numeric_limits<double>::quiet_NaN();
    return std::stod(t);
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      flush();
      continue;
    }
    if (line[0] == '#') continue;
    std::istringstream ss(line);
    std::string first;
    ss >> first;
    if (first.rfind("op=", 0) == 0) {
      flush();
      if (first.substr(3) != op) continue;
      active = true;
      std::string kv = first;
      do {
        const auto eq = kv.find('=');
        if (eq != std::string::npos) cur.fields[kv.substr(0, eq)] = kv.substr(eq + 1);
      } while (ss >> kv);
      continue;
    }
    if (!active) continue;
    std::vector<double> vals;
    std::string t;
    while (ss >> t) vals.push_back(parse_num(t));
    cur.data[first] = vals;
  }
  flush();
  return out;
}

}  // namespace ref_scaled
