// Logging for the kernel: spdlog loggers behind an asynchronous queue, so no thread (an HTTP I/O
// thread above all) ever blocks on writing a log line. When the queue is full the oldest lines are
// dropped rather than the caller stalled.
//
// Thread-safety: init_logging is called once by main before any other thread starts; logger() and the
// returned loggers are safe to use from any thread.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

#include "config/config.hpp"

namespace samokoder::core {

// Configures the sink, format ("text" or "json") and level for every logger. Safe to call again.
void init_logging(const config::LogConfig& config);

// The logger for one subsystem ("http", "plugins", "plugin.storage.sqlite", ...), created on first use.
std::shared_ptr<spdlog::logger> logger(std::string_view name);

// Flushes queued lines; call before exit.
void flush_logging();

}  // namespace samokoder::core
