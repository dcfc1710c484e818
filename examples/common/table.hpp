// A small table that prints aligned to stdout and writes the same rows, at full precision, as CSV.
#pragma once

#include <sys/stat.h>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace entmax_examples {

/// Creates directory `dir` if it does not exist (one level, like mkdir).
inline void ensure_dir(const std::string& dir) { ::mkdir(dir.c_str(), 0755); }

/// How a column shows its values on screen (CSV always gets every digit).
enum class Fmt {
  integer,  // 65536
  prob,     // exact 0 and 1 print as "0" and "1"; otherwise 6 decimals, or 3 significant digits below 1e-3
  fixed4,   // 0.1234
  sci,      // 1.23e-05
  text      // the cell's string
};

struct TableColumn {
  std::string name;
  Fmt fmt;
};

class Table {
 public:
  Table(std::string title, std::vector<TableColumn> columns)
      : title_(std::move(title)), cols_(std::move(columns)) {}

  /// Starts a new row; fill it with add() in column order.
  Table& row() {
    rows_.emplace_back();
    return *this;
  }
  Table& add(double v) {
    rows_.back().push_back(Cell{v, {}});
    return *this;
  }
  Table& add(std::string s) {
    rows_.back().push_back(Cell{0.0, std::move(s)});
    return *this;
  }

  std::size_t rows() const { return rows_.size(); }

  void print() const {
    std::vector<std::vector<std::string>> shown;
    std::vector<std::size_t> width(cols_.size());
    for (std::size_t c = 0; c < cols_.size(); ++c) width[c] = cols_[c].name.size();
    for (const auto& r : rows_) {
      shown.emplace_back();
      for (std::size_t c = 0; c < r.size() && c < cols_.size(); ++c) {
        shown.back().push_back(format(cols_[c].fmt, r[c]));
        if (shown.back().back().size() > width[c]) width[c] = shown.back().back().size();
      }
    }
    std::printf("\n%s\n", title_.c_str());
    for (std::size_t c = 0; c < cols_.size(); ++c)
      std::printf("%s%*s", c ? "  " : "", static_cast<int>(width[c]), cols_[c].name.c_str());
    std::printf("\n");
    for (const auto& r : shown) {
      for (std::size_t c = 0; c < r.size(); ++c)
        std::printf("%s%*s", c ? "  " : "", static_cast<int>(width[c]), r[c].c_str());
      std::printf("\n");
    }
  }

  /// Writes dir/name (creating dir); an empty dir writes nothing. Returns false and says why on failure.
  bool write_csv(const std::string& dir, const std::string& name) const {
    if (dir.empty()) return true;
    ensure_dir(dir);
    const std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return false;
    }
    for (std::size_t c = 0; c < cols_.size(); ++c)
      std::fprintf(f, "%s%s", c ? "," : "", cols_[c].name.c_str());
    std::fprintf(f, "\n");
    for (const auto& r : rows_) {
      for (std::size_t c = 0; c < r.size(); ++c) {
        if (c) std::fputc(',', f);
        if (cols_[c].fmt == Fmt::text)
          std::fprintf(f, "%s", r[c].text.c_str());
        else if (cols_[c].fmt == Fmt::integer)
          std::fprintf(f, "%.0f", r[c].value);
        else
          std::fprintf(f, "%.17g", r[c].value);
      }
      std::fprintf(f, "\n");
    }
    std::fclose(f);
    std::printf("(wrote %s)\n", path.c_str());
    return true;
  }

 private:
  struct Cell {
    double value;
    std::string text;
  };

  static std::string format(Fmt fmt, const Cell& cell) {
    char buf[64];
    const double v = cell.value;
    switch (fmt) {
      case Fmt::text:
        return cell.text;
      case Fmt::integer:
        std::snprintf(buf, sizeof buf, "%.0f", v);
        break;
      case Fmt::prob:
        if (v == 0.0 || v == 1.0)
          std::snprintf(buf, sizeof buf, "%.0f", v);
        else if (std::fabs(v) < 1e-3)
          std::snprintf(buf, sizeof buf, "%.3g", v);
        else
          std::snprintf(buf, sizeof buf, "%.6f", v);
        break;
      case Fmt::fixed4:
        std::snprintf(buf, sizeof buf, "%.4f", v);
        break;
      case Fmt::sci:
        std::snprintf(buf, sizeof buf, "%.3g", v);
        break;
    }
    return buf;
  }

  std::string title_;
  std::vector<TableColumn> cols_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace entmax_examples
