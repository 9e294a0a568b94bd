// Metrics registry: counters, gauges and histograms exported in the Prometheus text format.
//
// Metrics are created once (registration takes a lock) and then updated lock-free through the
// returned reference, so hot paths cache the reference and pay one atomic operation per update.
// Values computed at scrape time (plugin states, pool sizes) come from collectors.
//
// Ownership: the registry owns every metric; references stay valid for the registry's lifetime.
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace samokoder::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(double delta = 1.0) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  void add(double delta) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;

  const std::vector<double>& upper_bounds() const noexcept { return upper_bounds_; }
  // Non-cumulative count of bucket i; index upper_bounds().size() is the +Inf bucket.
  std::uint64_t bucket_count(std::size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Latency buckets in seconds, 100 us to 10 s.
std::vector<double> default_latency_buckets();

// True for a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
bool is_valid_metric_name(std::string_view name) noexcept;
// True for a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*).
bool is_valid_label_name(std::string_view name) noexcept;

// Samples a collector adds at scrape time.
class Exposition {
 public:
  void gauge(std::string_view name, std::string_view help, Labels labels, double value);
  void counter(std::string_view name, std::string_view help, Labels labels, double value);

 private:
  friend class Registry;
  struct Family {
    std::string help;
    std::string type;
    std::vector<std::pair<Labels, double>> samples;
  };
  std::map<std::string, Family, std::less<>> families_;
};

class Registry;

// Keeps a collector registered; unregisters it on destruction, waiting for a scrape that is running
// it, so the collector's owner may be destroyed right after. Move-only.
class [[nodiscard]] CollectorRegistration {
 public:
  CollectorRegistration() = default;
  CollectorRegistration(CollectorRegistration&& other) noexcept { *this = std::move(other); }
  CollectorRegistration& operator=(CollectorRegistration&& other) noexcept;
  CollectorRegistration(const CollectorRegistration&) = delete;
  CollectorRegistration& operator=(const CollectorRegistration&) = delete;
  ~CollectorRegistration() { reset(); }
  void reset() noexcept;

 private:
  friend class Registry;
  CollectorRegistration(Registry* registry, std::uint64_t id) : registry_(registry), id_(id) {}
  Registry* registry_ = nullptr;
  std::uint64_t id_ = 0;
};

class Registry {
 public:
  using Collector = std::function<void(Exposition&)>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the metric for (name, labels), creating it on first use. Throws std::invalid_argument
  // for an invalid name or label, or when the name is already registered with another type.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                       std::vector<double> upper_bounds = default_latency_buckets());

  // The collector runs on every render() until the returned registration is destroyed.
  CollectorRegistration add_collector(Collector collector);

  // The whole registry in the Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Type type, const Labels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
  friend class CollectorRegistration;
  void remove_collector(std::uint64_t id);

  mutable std::shared_mutex collectors_mutex_;
  std::map<std::uint64_t, Collector> collectors_;
  std::uint64_t next_collector_id_ = 1;
};

}  // namespace samokoder::metrics
