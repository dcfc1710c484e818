// Reader for the golden vector files in tests/data (golden_normalizers.txt,
// golden_attention.txt): records separated by blank lines; a header line of key=value pairs
// (the first is op=...), then one line per named vector "name v1 v2 ...". "-inf" and "inf"
// are parsed; '#' lines are comments.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef ENTMAX_TEST_DATA_DIR
#define ENTMAX_TEST_DATA_DIR "tests/data"
#endif

namespace entmax_test {

struct GoldenRecord {
  std::string op;                                   ///< value of op=
  std::map<std::string, std::string> params;        ///< every key=value of the header, op included
  std::map<std::string, std::vector<double>> data;  ///< named vectors (scalars are 1-vectors)
  int line = 0;                                     ///< header line number in the file

  bool has(const std::string& key) const { return params.count(key) != 0 || data.count(key) != 0; }
  const std::string& param(const std::string& key) const {
    auto it = params.find(key);
    if (it == params.end()) throw std::out_of_range("golden record has no parameter " + key);
    return it->second;
  }
  double number(const std::string& key) const { return std::strtod(param(key).c_str(), nullptr); }
  std::size_t size(const std::string& key) const {
    return static_cast<std::size_t>(std::strtoull(param(key).c_str(), nullptr, 10));
  }
  const std::vector<double>& vec(const std::string& name) const {
    auto it = data.find(name);
    if (it == data.end()) throw std::out_of_range("golden record has no vector " + name);
    return it->second;
  }
  double scalar(const std::string& name) const { return vec(name).at(0); }
  /// "op=entmax15 n=17 tag=ties (line 123)", for failure messages.
  std::string describe() const {
    std::string s;
    for (const auto& kv : params) s += kv.first + "=" + kv.second + " ";
    return s + "(line " + std::to_string(line) + ")";
  }
};

/// Parses one golden file. Throws std::runtime_error if it cannot be opened.
inline std::vector<GoldenRecord> read_golden(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path);
  std::vector<GoldenRecord> out;
  std::string line;
  bool open = false;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      open = false;
      continue;
    }
    if (line[0] == '#') continue;
    std::istringstream ls(line);
    std::string first;
    ls >> first;
    if (first.rfind("op=", 0) == 0) {
      out.emplace_back();
      GoldenRecord& r = out.back();
      r.line = lineno;
      std::string kv = first;
      do {
        const auto eq = kv.find('=');
        if (eq != std::string::npos) r.params[kv.substr(0, eq)] = kv.substr(eq + 1);
      } while (ls >> kv);
      r.op = r.params["op"];
      open = true;
      continue;
    }
    if (!open)
      throw std::runtime_error(path + ": data line outside a record at line " + std::to_string(lineno));
    std::vector<double>& v = out.back().data[first];
    std::string tok;
    while (ls >> tok) v.push_back(std::strtod(tok.c_str(), nullptr));  // strtod reads "-inf", "nan"
  }
  return out;
}

/// Reads tests/data/<file> (ENTMAX_TEST_DATA_DIR), keeping the records with op == `op` (all
/// records when op is empty).
inline std::vector<GoldenRecord> golden(const std::string& file, const std::string& op = "") {
  std::vector<GoldenRecord> all = read_golden(std::string(ENTMAX_TEST_DATA_DIR) + "/" + file);
  if (op.empty()) return all;
  std::vector<GoldenRecord> sel;
  for (auto& r : all)
    if (r.op == op) sel.push_back(std::move(r));
  return sel;
}

}  // namespace entmax_test
