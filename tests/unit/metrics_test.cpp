#include <stdexcept>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/registry.hpp"

namespace samokoder::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistryTest, RendersCountersGaugesAndHistogramsInPrometheusFormat) {
  Registry registry;
  registry.counter("requests_total", "Requests served", {{"route", "healthz"}}).add(3);
  registry.gauge("connections", "Open connections").set(2);
  auto& histogram = registry.histogram("latency_seconds", "Latency", {}, {0.1, 1.0});
  histogram.observe(0.05);
  histogram.observe(0.5);
  histogram.observe(5);
  const std::string text = registry.render();
  EXPECT_THAT(text, HasSubstr("# HELP requests_total Requests served\n# TYPE requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("requests_total{route=\"healthz\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE connections gauge\nconnections 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_sum 5.55\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count 3\n"));
}

TEST(MetricsRegistryTest, SameNameAndLabelsReturnTheSameMetric) {
  Registry registry;
  Counter& a = registry.counter("x_total", "x", {{"k", "v"}});
  Counter& b = registry.counter("x_total", "x", {{"k", "v"}});
  Counter& other = registry.counter("x_total", "x", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
}

TEST(MetricsRegistryTest, LabelValuesAreEscaped) {
  Registry registry;
  registry.counter("escaped_total", "help with \\ and\nnewline", {{"path", "a\"b\\c\nd"}}).add();
  const std::string text = registry.render();
  EXPECT_THAT(text, HasSubstr(R"(escaped_total{path="a\"b\\c\nd"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(# HELP escaped_total help with \\ and\nnewline)"));
}

TEST(MetricsRegistryTest, InvalidNamesAndTypeClashesAreRejected) {
  Registry registry;
  EXPECT_THROW(registry.counter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok", "x", {{"bad label", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok", "x", {{"__reserved", "v"}}), std::invalid_argument);
  registry.counter("clash", "x");
  EXPECT_THROW(registry.gauge("clash", "x"), std::invalid_argument);
}

TEST(MetricsRegistryTest, CollectorsAddScrapeTimeSamples) {
  Registry registry;
  int scrapes = 0;
  auto registration = registry.add_collector([&](Exposition& out) {
    ++scrapes;
    out.gauge("plugin_state", "State", {{"plugin", "a.b"}, {"state", "ACTIVE"}}, 1);
  });
  EXPECT_THAT(registry.render(), HasSubstr("plugin_state{plugin=\"a.b\",state=\"ACTIVE\"} 1\n"));
  registry.render();
  EXPECT_EQ(scrapes, 2);
  registration.reset();
  EXPECT_THAT(registry.render(), Not(HasSubstr("plugin_state")));
  EXPECT_EQ(scrapes, 2);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry registry;
  Counter& counter = registry.counter("concurrent_total", "x");
  Histogram& histogram = registry.histogram("concurrent_seconds", "x");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.add();
        histogram.observe(0.001);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(counter.value(), 40000);
  EXPECT_EQ(histogram.count(), 40000u);
}

}  // namespace
}  // namespace samokoder::metrics
