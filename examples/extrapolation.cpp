// Length extrapolation, trained end to end with this library's attention and its backward pass.
//
// A one-layer attention model learns key-value retrieval on sequences of at most 64 items, then is
// evaluated on 64 x {1, 4, 16, 64, 256, 1024} items (up to 65,536). Four variants differ only in
// the attention normalizer and its query scale: softmax, scalable softmax (s log n), 1.5-entmax
// and ASEntmax (Vasylenko et al., ICLR 2026). Softmax spreads mass over the extra items and loses the answer;
// entmax gives the distractors exact zeros.
//
//   extrapolation --check                  gradient check + a few seconds of training (CTest)
//   extrapolation --seeds 5 --csv out.csv  the full experiment (see scripts/extrapolation)
#include "common/adam.hpp"
#include "common/kv_task.hpp"
#include "common/retrieval_model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using example::Variant;
using Clock = std::chrono::steady_clock;

struct Options {
  bool check = false;
  std::vector<Variant> variants{Variant::softmax, Variant::scalable_softmax, Variant::entmax15,
                                Variant::asentmax};
  int seeds = 3;
  int first_seed = 1;
  int steps = 3000;
  int batch = 32;
  double lr = 3e-3;
  std::size_t train_min = 16;  // training lengths are drawn uniformly from [train_min, train_len]
  std::size_t train_len = 64;
  std::vector<std::size_t> factors{1, 4, 16, 64, 256, 1024};
  int eval_samples = 256;
  int jobs = 1;
  std::string csv;
  example::ModelConfig model;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt_time(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%4.1fs", s);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

std::mutex g_print_mutex;
template <class... Args>
void say(const char* fmt, Args... args) {
  std::lock_guard<std::mutex> lock(g_print_mutex);
  std::fprintf(stderr, fmt, args...);
  std::fflush(stderr);
}

// ---------------------------------------------------------------------------------------------
// Gradient check of the whole model in double against central finite differences.

// A small double-precision model with non-trivial scale parameters and, for entmax, sharp enough
// scores that some attention weights are exactly zero (so the sparse branch is exercised).
example::RetrievalModel<double> small_model(Variant v, example::AttentionPath path) {
  example::ModelConfig c;
  c.num_keys = 7;
  c.num_values = 5;
  c.d_model = 6;
  c.heads = 2;
  c.head_dim = 3;
  c.variant = v;
  c.path = path;
  example::RetrievalModel<double> m(c);
  m.init(11);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n01(0.0, 1.0);
  for (auto* blk : {&m.w.as_wb, &m.w.as_bb, &m.w.as_wg, &m.w.as_bg})
    for (Eigen::Index i = 0; i < blk->size(); ++i) blk->data()[i] = 0.5 * n01(rng);
  for (Eigen::Index i = 0; i < m.w.ss_beta.size(); ++i) m.w.ss_beta.data()[i] = 1.0 + 0.3 * n01(rng);
  m.w.wq *= 3.0;
  return m;
}

example::KvBatch small_batch() {
  std::mt19937_64 data_rng(7);
  return example::make_kv_batch(data_rng, 4, 6, 7, 5);
}

// Gradient of the whole model (every parameter) against central finite differences, in double.
bool gradient_check(Variant v, example::AttentionPath path) {
  example::RetrievalModel<double> m = small_model(v, path);
  const example::KvBatch b = small_batch();
  example::Cache<double> cache0;
  m.forward(b, cache0);
  m.backward(b, cache0);
  std::vector<double> mass, support;
  m.target_attention(b, cache0, mass, support);
  const double max_support = *std::max_element(support.begin(), support.end());
  const double keys = static_cast<double>(cache0.N);
  auto grads = m.g.named(v);
  auto params = m.w.named(v);
  double worst = 0;
  std::string worst_name;
  std::size_t checked = 0;
  const double h = 1e-5;
  for (std::size_t k = 0; k < params.size(); ++k) {
    example::Mat<double>& P = *params[k].second;
    const example::Mat<double>& G = *grads[k].second;
    for (Eigen::Index i = 0; i < P.size(); ++i) {
      const double x0 = P.data()[i];
      example::Cache<double> cache;
      P.data()[i] = x0 + h;
      const double lp = m.forward(b, cache);
      P.data()[i] = x0 - h;
      const double lm = m.forward(b, cache);
      P.data()[i] = x0;
      const double fd = (lp - lm) / (2 * h);
      // pass: |fd - g| <= 1e-8 + 1e-6 (|fd| + |g|); err is that ratio
      const double err = std::abs(fd - G.data()[i]) / (1e-8 + 1e-6 * (std::abs(fd) + std::abs(G.data()[i])));
      ++checked;
      if (err > worst) {
        worst = err;
        worst_name = params[k].first + "[" + std::to_string(i) + "]";
      }
    }
  }
  bool ok = worst <= 1.0;
  const bool sparse = v == Variant::entmax15 || v == Variant::asentmax;
  if (sparse && !(max_support < keys)) ok = false;  // the sparse branch must be exercised
  say("gradient check %-9s %-7s %3zu parameters, worst |fd - g| / (1e-8 + 1e-6 (|fd| + |g|)) = %.3f (%s), "
      "largest support %.0f of %.0f keys  %s\n",
      example::variant_name(v), path == example::AttentionPath::library ? "library" : "manual", checked,
      worst, worst_name.c_str(), max_support, keys, ok ? "ok" : "FAILED");
  return ok;
}

// The library path (entmax::attention with row-scaled policies and AdaptiveTemperature) against
// the hand-written one: same loss and same gradients, in double.
bool paths_agree(Variant v) {
  example::RetrievalModel<double> lib = small_model(v, example::AttentionPath::library);
  example::RetrievalModel<double> man = small_model(v, example::AttentionPath::manual);
  const example::KvBatch b = small_batch();
  const double l1 = lib.loss_and_grad(b), l2 = man.loss_and_grad(b);
  double worst = std::abs(l1 - l2) / (1e-300 + std::abs(l2));
  auto g1 = lib.g.named(v);
  auto g2 = man.g.named(v);
  for (std::size_t k = 0; k < g1.size(); ++k)
    worst = std::max(worst, (*g1[k].second - *g2[k].second).norm() / (1e-12 + g2[k].second->norm()));
  const bool ok = worst < 1e-10;
  say("library vs manual %-9s loss %.12f vs %.12f, worst relative gradient difference %.1e  %s\n",
      example::variant_name(v), l1, l2, worst, ok ? "ok" : "FAILED");
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Training and evaluation of one (variant, seed).

struct EvalPoint {
  std::size_t factor = 0, length = 0;
  int samples = 0;
  double accuracy = 0, target_mass = 0, support = 0, scale = 0, seconds = 0;
};

struct RunResult {
  Variant variant{};
  int seed = 0;
  double first_loss = 0, final_loss = 0, final_train_acc = 0, train_seconds = 0;
  std::vector<EvalPoint> eval;
};

std::string tag(Variant v, int seed) {
  return std::string(example::variant_name(v)) + " seed " + std::to_string(seed);
}

template <class T>
RunResult train_and_evaluate(const Options& o, Variant v, int seed, bool quiet) {
  example::ModelConfig c = o.model;
  c.variant = v;
  example::RetrievalModel<T> m(c);
  m.init(static_cast<std::uint64_t>(1000 + seed));
  std::vector<example::Mat<T>*> ps, gs;
  for (auto& p : m.w.named(v)) ps.push_back(p.second);
  for (auto& p : m.g.named(v)) gs.push_back(p.second);
  example::Adam<example::Mat<T>> adam(ps, gs, static_cast<T>(o.lr));

  RunResult r;
  r.variant = v;
  r.seed = seed;
  const std::string name = tag(v, seed);
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed) * 7919u + 17u);
  const auto t0 = Clock::now();
  auto last_print = t0;
  double ema_loss = 0, ema_acc = 0;
  const int warmup = std::max(1, o.steps / 20);
  for (int step = 1; step <= o.steps; ++step) {
    // linear warm-up, then cosine decay to 10 %
    const double frac = static_cast<double>(step) / o.steps;
    const double sched = step <= warmup ? static_cast<double>(step) / warmup
                                        : 0.1 + 0.45 * (1 + std::cos(3.141592653589793 * frac));
    adam.set_lr(static_cast<T>(o.lr * sched));
    const std::size_t n = o.train_min + example::uniform_index(rng, o.train_len - o.train_min + 1);
    const example::KvBatch b =
        example::make_kv_batch(rng, static_cast<std::size_t>(o.batch), n, c.num_keys, c.num_values);
    example::Cache<T> cache;
    const double loss = static_cast<double>(m.forward(b, cache));
    m.backward(b, cache);
    adam.step(static_cast<T>(1.0));
    int hits = 0;
    for (Eigen::Index s = 0; s < cache.B; ++s) {
      Eigen::Index arg = 0;
      cache.logits.row(s).maxCoeff(&arg);
      hits += arg == b.target[static_cast<std::size_t>(s)] ? 1 : 0;
    }
    const double acc = static_cast<double>(hits) / o.batch;
    if (step == 1) {
      r.first_loss = loss;
      ema_loss = loss;
      ema_acc = acc;
    }
    ema_loss = 0.98 * ema_loss + 0.02 * loss;
    ema_acc = 0.98 * ema_acc + 0.02 * acc;
    const double el = seconds_since(t0);
    if (!quiet &&
        (std::chrono::duration<double>(Clock::now() - last_print).count() > 2.0 || step == o.steps)) {
      last_print = Clock::now();
      say("[%s] train step %5d/%d  loss %.4f  acc %5.1f%%  time left %s\n", name.c_str(), step, o.steps,
          ema_loss, 100 * ema_acc, fmt_time(el / step * (o.steps - step)).c_str());
    }
  }
  r.final_loss = ema_loss;
  r.final_train_acc = ema_acc;
  r.train_seconds = seconds_since(t0);

  // Evaluation: a fixed test set per length, the same for every variant and seed.
  const auto te = Clock::now();
  double total_work = 0, done_work = 0;
  for (std::size_t f : o.factors) total_work += static_cast<double>(f);
  for (std::size_t f : o.factors) {
    const auto t1 = Clock::now();
    EvalPoint e;
    e.factor = f;
    e.length = o.train_len * f;
    std::mt19937_64 test_rng(424242u + e.length);
    const std::size_t chunk = std::max<std::size_t>(1, (std::size_t{1} << 17) / e.length);
    std::size_t hits = 0;
    double mass = 0, support = 0, scale = 0;
    for (int done = 0; done < o.eval_samples;) {
      const std::size_t bs = std::min<std::size_t>(chunk, static_cast<std::size_t>(o.eval_samples - done));
      const example::KvBatch b = example::make_kv_batch(test_rng, bs, e.length, c.num_keys, c.num_values);
      example::Cache<T> cache;
      m.forward(b, cache);
      std::vector<double> tm, sup;
      m.target_attention(b, cache, tm, sup);
      for (Eigen::Index s = 0; s < cache.B; ++s) {
        Eigen::Index arg = 0;
        cache.logits.row(s).maxCoeff(&arg);
        hits += arg == b.target[static_cast<std::size_t>(s)] ? 1u : 0u;
        mass += tm[static_cast<std::size_t>(s)];
        support += sup[static_cast<std::size_t>(s)];
        scale += static_cast<double>(cache.S.row(s).mean());
      }
      done += static_cast<int>(bs);
      if (!quiet && std::chrono::duration<double>(Clock::now() - last_print).count() > 2.0) {
        last_print = Clock::now();
        const double w = done_work + static_cast<double>(f) * done / o.eval_samples;
        say("[%s] eval %6zu items  %4d/%d  acc %5.1f%%  time left %s\n", name.c_str(), e.length, done,
            o.eval_samples, 100.0 * static_cast<double>(hits) / done,
            fmt_time(seconds_since(te) / w * (total_work - w)).c_str());
      }
    }
    done_work += static_cast<double>(f);
    e.samples = o.eval_samples;
    e.accuracy = static_cast<double>(hits) / o.eval_samples;
    e.target_mass = mass / o.eval_samples;
    e.support = support / o.eval_samples;
    e.scale = scale / o.eval_samples;
    e.seconds = seconds_since(t1);
    r.eval.push_back(e);
    if (!quiet)
      say("[%s] eval %6zu items (%4zux)  acc %5.1f%%  target weight %.3f  support %.1f  scale %.2f  (%s)\n",
          name.c_str(), e.length, f, 100 * e.accuracy, e.target_mass, e.support, e.scale,
          fmt_time(e.seconds).c_str());
  }
  return r;
}

// ---------------------------------------------------------------------------------------------

int run_check() {
  bool ok = true;
  for (Variant v : {Variant::softmax, Variant::scalable_softmax, Variant::entmax15, Variant::asentmax}) {
    ok = gradient_check(v, example::AttentionPath::library) && ok;
    ok = gradient_check(v, example::AttentionPath::manual) && ok;
    ok = paths_agree(v) && ok;
  }
  Options o;
  o.steps = 150;
  o.batch = 32;
  o.lr = 1e-2;
  o.train_min = 8;
  o.train_len = 16;
  o.factors = {1, 16};
  o.eval_samples = 64;
  o.model.num_keys = 16;
  o.model.num_values = 8;
  o.model.d_model = 16;
  o.model.heads = 2;
  o.model.head_dim = 8;
  for (Variant v : {Variant::softmax, Variant::asentmax}) {
    const RunResult r = train_and_evaluate<float>(o, v, 1, true);
    const bool dropped = r.final_loss < 0.7 * r.first_loss;
    const bool evaluated = r.eval.size() == 2 && r.eval[1].length == 256 && r.eval[1].accuracy >= 0 &&
                           r.eval[1].accuracy <= 1 && r.eval[1].samples == 64;
    say("check %-9s loss %.3f -> %.3f (%s), accuracy at 16 items %.1f%%, at 256 items %.1f%% (%s)\n",
        example::variant_name(v), r.first_loss, r.final_loss, dropped ? "dropped" : "DID NOT DROP",
        100 * r.eval[0].accuracy, 100 * r.eval[1].accuracy, evaluated ? "evaluated" : "EVALUATION FAILED");
    ok = ok && dropped && evaluated;
  }
  if (!ok) {
    std::fprintf(stderr, "extrapolation --check: FAILED\n");
    return 1;
  }
  std::printf("extrapolation --check: ok\n");
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

void usage() {
  std::fprintf(stderr,
               "usage: extrapolation [--check] [--variants softmax,ssmax,entmax15,asentmax] [--seeds N]\n"
               "         [--first-seed S] [--steps N] [--batch N] [--lr X] [--train-len N] [--train-min N]\n"
               "         [--factors 1,4,16,...] [--eval-samples N] [--jobs N] [--csv FILE]\n"
               "         [--keys N] [--values N] [--d-model N] [--heads N] [--head-dim N]\n"
               "defaults: all four variants, 3 seeds, 3000 steps, batch 32, lr 0.003, train lengths 16..64,\n"
               "          factors 1,4,16,64,256,1024, 256 test sequences per length, 1 job, 64 keys,\n"
               "          32 values, d_model 32, 2 heads of 16\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--check") {
      o.check = true;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--variants") {
      o.variants.clear();
      for (const auto& s : split(next())) {
        Variant v{};
        if (!example::parse_variant(s, v)) {
          std::fprintf(stderr, "extrapolation: unknown variant '%s'\n", s.c_str());
          return 2;
        }
        o.variants.push_back(v);
      }
    } else if (a == "--seeds") {
      o.seeds = std::stoi(next());
    } else if (a == "--first-seed") {
      o.first_seed = std::stoi(next());
    } else if (a == "--steps") {
      o.steps = std::stoi(next());
    } else if (a == "--batch") {
      o.batch = std::stoi(next());
    } else if (a == "--lr") {
      o.lr = std::stod(next());
    } else if (a == "--train-len") {
      o.train_len = std::stoul(next());
    } else if (a == "--train-min") {
      o.train_min = std::stoul(next());
    } else if (a == "--factors") {
      o.factors.clear();
      for (const auto& s : split(next())) o.factors.push_back(std::stoul(s));
    } else if (a == "--eval-samples") {
      o.eval_samples = std::stoi(next());
    } else if (a == "--jobs") {
      o.jobs = std::max(1, std::stoi(next()));
    } else if (a == "--csv") {
      o.csv = next();
    } else if (a == "--keys") {
      o.model.num_keys = std::stoi(next());
    } else if (a == "--values") {
      o.model.num_values = std::stoi(next());
    } else if (a == "--d-model") {
      o.model.d_model = std::stoi(next());
    } else if (a == "--heads") {
      o.model.heads = std::stoi(next());
    } else if (a == "--head-dim") {
      o.model.head_dim = std::stoi(next());
    } else {
      usage();
      return 2;
    }
  }
  if (o.check) return run_check();
  if (o.train_min < 1 || o.train_min > o.train_len || o.model.num_keys < 2) {
    std::fprintf(stderr, "extrapolation: need 1 <= train-min <= train-len and at least 2 keys\n");
    return 2;
  }

  // Every (variant, seed) is independent; run them on --jobs threads.
  struct Job {
    Variant v;
    int seed;
  };
  std::vector<Job> jobs;
  for (int s = 0; s < o.seeds; ++s)
    for (Variant v : o.variants) jobs.push_back({v, o.first_seed + s});
  std::vector<RunResult> results(jobs.size());
  std::mutex next_mutex;
  std::size_t next_job = 0;
  const auto t0 = Clock::now();
  auto worker = [&]() {
    for (;;) {
      std::size_t k;
      {
        std::lock_guard<std::mutex> lock(next_mutex);
        if (next_job >= jobs.size()) return;
        k = next_job++;
      }
      results[k] = train_and_evaluate<float>(o, jobs[k].v, jobs[k].seed, false);
      say("[%s] done: train loss %.4f, train accuracy %.1f%%, %s training; run %zu of %zu, %s elapsed\n",
          tag(jobs[k].v, jobs[k].seed).c_str(), results[k].final_loss, 100 * results[k].final_train_acc,
          fmt_time(results[k].train_seconds).c_str(), k + 1, jobs.size(),
          fmt_time(seconds_since(t0)).c_str());
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < o.jobs; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    f << "variant,seed,factor,length,samples,accuracy,target_weight,support,scale,train_loss,train_accuracy,"
         "train_seconds,eval_seconds\n";
    for (const auto& r : results)
      for (const auto& e : r.eval)
        f << example::variant_name(r.variant) << ',' << r.seed << ',' << e.factor << ',' << e.length << ','
          << e.samples << ',' << e.accuracy << ',' << e.target_mass << ',' << e.support << ',' << e.scale
          << ',' << r.final_loss << ',' << r.final_train_acc << ',' << r.train_seconds << ',' << e.seconds
          << '\n';
    if (!f) {
      std::fprintf(stderr, "extrapolation: cannot write %s\n", o.csv.c_str());
      return 1;
    }
  }

  // Summary (markdown): exact-match accuracy over seeds, mean +- sample sd and [min, max].
  std::printf(
      "\nExact-match accuracy (%%) over %d seed(s) x %d test sequences per length; trained on "
      "%zu..%zu items.\n\n| variant |",
      o.seeds, o.eval_samples, o.train_min, o.train_len);
  for (std::size_t f : o.factors) std::printf(" %zux (%zu) |", f, f * o.train_len);
  std::printf("\n|---|");
  for (std::size_t fi = 0; fi < o.factors.size(); ++fi) std::printf("---|");
  std::printf("\n");
  for (Variant v : o.variants) {
    std::printf("| %s |", example::variant_name(v));
    for (std::size_t fi = 0; fi < o.factors.size(); ++fi) {
      std::vector<double> acc;
      for (const auto& r : results)
        if (r.variant == v) acc.push_back(100 * r.eval[fi].accuracy);
      double mean = 0, var = 0;
      for (double a : acc) mean += a;
      mean /= static_cast<double>(acc.size());
      for (double a : acc) var += (a - mean) * (a - mean);
      const double sd = acc.size() > 1 ? std::sqrt(var / static_cast<double>(acc.size() - 1)) : 0.0;
      std::printf(" %.1f ± %.1f [%.1f, %.1f] |", mean, sd, *std::min_element(acc.begin(), acc.end()),
                  *std::max_element(acc.begin(), acc.end()));
    }
    std::printf("\n");
  }
  std::printf("wall time %s\n", fmt_time(seconds_since(t0)).c_str());
  return 0;
}
