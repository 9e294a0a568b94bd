#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace samokoder::metrics {
namespace {

bool is_name_char(char c, bool first, bool allow_colon) {
  const bool alpha =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
  return first ? alpha : (alpha || (c >= '0' && c <= '9'));
}

bool is_valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

void append_escaped(std::string& out, std::string_view value, bool is_help) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && !is_help) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out.append(buffer, ec == std::errc() ? end : buffer);
  }
}

void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_escaped(out, value, false);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, true);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  append_labels(out, labels);
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void validate_labels(const Labels& labels) {
  for (const auto& [name, value] : labels) {
    if (!is_valid_label_name(name) || name.starts_with("__")) {
      throw std::invalid_argument("invalid metric label name '" + name + "'");
    }
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds_.size() + 1)) {
  if (!std::is_sorted(upper_bounds_.begin(), upper_bounds_.end())) {
    throw std::invalid_argument("histogram bucket bounds must be sorted");
  }
}

void Histogram::observe(double value) noexcept {
  const auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - upper_bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<double> default_latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

bool is_valid_metric_name(std::string_view name) noexcept {
  return is_valid_name(name, true);
}
bool is_valid_label_name(std::string_view name) noexcept {
  return is_valid_name(name, false);
}

void Exposition::gauge(std::string_view name, std::string_view help, Labels labels, double value) {
  auto& family = families_[std::string(name)];
  family.help = help;
  family.type = "gauge";
  family.samples.emplace_back(std::move(labels), value);
}

void Exposition::counter(std::string_view name, std::string_view help, Labels labels, double value) {
  auto& family = families_[std::string(name)];
  family.help = help;
  family.type = "counter";
  family.samples.emplace_back(std::move(labels), value);
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type,
                                   const Labels& labels) {
  if (!is_valid_metric_name(name))
    throw std::invalid_argument("invalid metric name '" + std::string(name) + "'");
  validate_labels(labels);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::invalid_argument("metric '" + std::string(name) + "' is already registered with another type");
  }
  return it->second;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::kCounter, labels).counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::kGauge, labels).gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, const Labels& labels,
                               std::vector<double> upper_bounds) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::kHistogram, labels).histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(upper_bounds));
  return *slot;
}

CollectorRegistration Registry::add_collector(Collector collector) {
  std::unique_lock lock(collectors_mutex_);
  const std::uint64_t id = next_collector_id_++;
  collectors_.emplace(id, std::move(collector));
  return CollectorRegistration(this, id);
}

void Registry::remove_collector(std::uint64_t id) {
  std::unique_lock lock(collectors_mutex_);  // waits for scrapes running this collector
  collectors_.erase(id);
}

CollectorRegistration& CollectorRegistration::operator=(CollectorRegistration&& other) noexcept {
  if (this != &other) {
    reset();
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

void CollectorRegistration::reset() noexcept {
  if (registry_ != nullptr) std::exchange(registry_, nullptr)->remove_collector(id_);
}

std::string Registry::render() const {
  std::string out;
  out.reserve(16 * 1024);
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, family] : families_) {
      switch (family.type) {
        case Type::kCounter:
          append_header(out, name, family.help, "counter");
          for (const auto& [labels, metric] : family.counters)
            append_sample(out, name, labels, metric->value());
          break;
        case Type::kGauge:
          append_header(out, name, family.help, "gauge");
          for (const auto& [labels, metric] : family.gauges)
            append_sample(out, name, labels, metric->value());
          break;
        case Type::kHistogram: {
          append_header(out, name, family.help, "histogram");
          const std::string bucket_name = name + "_bucket";
          for (const auto& [labels, metric] : family.histograms) {
            std::uint64_t cumulative = 0;
            const auto& bounds = metric->upper_bounds();
            for (std::size_t i = 0; i <= bounds.size(); ++i) {
              cumulative += metric->bucket_count(i);
              std::string le;
              if (i == bounds.size()) {
                le = "+Inf";
              } else {
                append_number(le, bounds[i]);
              }
              out += bucket_name;
              append_labels(out, labels, "le", le);
              out += ' ';
              append_number(out, static_cast<double>(cumulative));
              out += '\n';
            }
            append_sample(out, name + "_sum", labels, metric->sum());
            append_sample(out, name + "_count", labels, static_cast<double>(metric->count()));
          }
          break;
        }
      }
    }
  }
  // Collectors run outside the metrics lock (they take locks of their own subsystem), under a shared
  // lock that keeps their owner from unregistering, and so from being destroyed, mid-call.
  Exposition exposition;
  {
    std::shared_lock lock(collectors_mutex_);
    for (const auto& [id, collect] : collectors_)
      collect(exposition);
  }
  for (const auto& [name, family] : exposition.families_) {
    append_header(out, name, family.help, family.type);
    for (const auto& [labels, value] : family.samples)
      append_sample(out, name, labels, value);
  }
  return out;
}

}  // namespace samokoder::metrics
