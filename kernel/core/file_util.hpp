// Small filesystem helpers shared by the kernel: whole-file reads and SHA-256 digests.
//
// Thread-safety: all functions are reentrant.
#pragma once

#include <filesystem>
#include <string>

#include <samokoder/sdk/status.hpp>

namespace samokoder::core {

// The file's bytes; fails with kNotFound or kUnavailable and a message naming the path.
sdk::Result<std::string> read_file(const std::filesystem::path& path);

// Lowercase hex SHA-256 of the file's contents.
sdk::Result<std::string> sha256_file(const std::filesystem::path& path);

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace samokoder::core
