#include "plugins/generation.hpp"

#include <cstring>
#include <optional>
#include <random>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <samokoder/sdk.hpp>

#include "core/file_util.hpp"
#include "core/keep_until_exit.hpp"
#include "core/logging.hpp"
#include "plugins/elf_inspector.hpp"

namespace samokoder::plugins {
namespace {

namespace fs = std::filesystem;

// The descriptor prefix every SDK 1.x plugin has: fields up to and including `destroy`.
constexpr std::uint32_t kDescriptorSizeV1_0 = sizeof(samokoder_plugin_descriptor);
constexpr std::uint32_t kLeadingFieldsSize = 3 * sizeof(std::uint32_t);

LoadFailure fail(FailureReason reason, std::string message) {
  LoadFailure failure;
  failure.reason = reason;
  failure.message = std::move(message);
  return failure;
}

bool valid_id(std::string_view id) {
  const auto dot = id.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size() || id.size() > 64) return false;
  if (kind_from_name(id.substr(0, dot)) == std::nullopt) return false;
  for (char c : id.substr(dot + 1)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

// A name nobody else uses: id, generation, pid and 64 random bits, so copies of two kernels sharing a
// runtime dir never collide and dlopen never returns a stale handle for a path seen before.
fs::path private_copy_path(const fs::path& runtime_dir, std::string_view id, std::uint64_t generation) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
  std::string name = std::string(id.empty() ? "plugin" : id) + ".g" + std::to_string(generation) + "." +
                     std::to_string(::getpid()) + "." + suffix + ".so";
  return fs::absolute(runtime_dir) / name;
}

// Writes the bytes already validated (not the file again, which may have changed in between).
sdk::Status write_private_copy(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return sdk::Status::unavailable("cannot create " + path.parent_path().string() + ": " + ec.message());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
  if (fd < 0) return sdk::Status::unavailable("cannot create " + path.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string error = std::strerror(errno);
      ::close(fd);
      fs::remove(path, ec);
      return sdk::Status::unavailable("cannot write " + path.string() + ": " + error);
    }
    written += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {};
}

std::string describe_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    return std::string("threw ") + e.what();
  } catch (...) {
    return "threw a non-standard exception";
  }
}

// Runs plugin code; returns how it threw, if it did. The exception is fully destroyed on return, which
// matters: its destructor may live in the library that a failure path is about to unload.
template <typename F>
std::optional<std::string> guard(F&& call) {
  try {
    call();
    return std::nullopt;
  } catch (...) {
    return describe_exception(std::current_exception());
  }
}

void* cast_to_kind(sdk::Plugin* instance, std::uint32_t kind) {
  switch (kind) {
    case SAMOKODER_KIND_AGENT:
      return dynamic_cast<sdk::Agent*>(instance);
    case SAMOKODER_KIND_LLM:
      return dynamic_cast<sdk::LlmProvider*>(instance);
    case SAMOKODER_KIND_AUTH:
      return dynamic_cast<sdk::AuthProvider*>(instance);
    case SAMOKODER_KIND_STORAGE:
      return dynamic_cast<sdk::Storage*>(instance);
    case SAMOKODER_KIND_PREVIEW:
      return dynamic_cast<sdk::PreviewRunner*>(instance);
    default:
      return nullptr;
  }
}

}  // namespace

bool is_semver(std::string_view version) noexcept {
  // MAJOR.MINOR.PATCH, numbers without leading zeros, then an optional -pre or +build tail.
  std::size_t pos = 0;
  for (int part = 0; part < 3; ++part) {
    const std::size_t start = pos;
    while (pos < version.size() && version[pos] >= '0' && version[pos] <= '9')
      ++pos;
    if (pos == start || (pos - start > 1 && version[start] == '0')) return false;
    if (part < 2) {
      if (pos >= version.size() || version[pos] != '.') return false;
      ++pos;
    }
  }
  if (pos == version.size()) return true;
  if (version[pos] != '-' && version[pos] != '+') return false;
  if (pos + 1 == version.size()) return false;
  for (char c : version.substr(pos + 1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
          c == '-' || c == '+')) {
      return false;
    }
  }
  return true;
}

bool is_resident(const fs::path& path) noexcept {
  void* handle = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  ::dlclose(handle);  // drop the reference RTLD_NOLOAD just took
  return true;
}

LoadFailure check_descriptor(const samokoder_plugin_descriptor* d, const std::string& expected_id,
                             const std::string& file_name) {
  const std::string where = file_name + ": ";
  if (d == nullptr)
    return fail(FailureReason::kBadDescriptor, where + "samokoder_plugin_entry returned NULL");
  // Only the three leading fields are known to exist until the major version is confirmed.
  if (d->struct_size < kLeadingFieldsSize) {
    return fail(
        FailureReason::kBadDescriptor,
        where + "descriptor struct_size " + std::to_string(d->struct_size) + " is too small to be one");
  }
  if (d->abi_major != SAMOKODER_ABI_MAJOR) {
    return fail(FailureReason::kAbiMajor,
                where + "built against SDK ABI " + std::to_string(d->abi_major) + "." +
                    std::to_string(d->abi_minor) + ", this kernel speaks ABI " +
                    std::to_string(SAMOKODER_ABI_MAJOR) + ".x; rebuild it against SDK " +
                    std::to_string(SAMOKODER_ABI_MAJOR) + ".x");
  }
  if (d->struct_size < kDescriptorSizeV1_0) {
    return fail(FailureReason::kBadDescriptor,
                where + "descriptor struct_size " + std::to_string(d->struct_size) + " is smaller than ABI " +
                    std::to_string(SAMOKODER_ABI_MAJOR) + ".0's " + std::to_string(kDescriptorSizeV1_0));
  }
  if (d->fingerprint == nullptr || d->id == nullptr || d->version == nullptr || d->description == nullptr ||
      d->create == nullptr || d->destroy == nullptr) {
    return fail(FailureReason::kBadDescriptor, where + "descriptor has a NULL field");
  }
  LoadFailure named;  // from here on, reports can name the plugin
  named.descriptor = DescriptorInfo{d->struct_size, d->abi_major, d->abi_minor, d->kind,
                                    d->fingerprint, d->id,        d->version,   d->description};
  auto fail_named = [&](FailureReason reason, std::string message) {
    named.reason = reason;
    named.message = where + std::move(message);
    return named;
  };
  // Same major: the 1.0 fields are where this kernel expects them, so a newer minor can be named.
  if (d->abi_minor > SAMOKODER_ABI_MINOR) {
    return fail_named(FailureReason::kAbiMinor,
                      "built against SDK ABI " + std::to_string(d->abi_major) + "." +
                          std::to_string(d->abi_minor) + ", newer than this kernel's " +
                          std::to_string(SAMOKODER_ABI_MAJOR) + "." + std::to_string(SAMOKODER_ABI_MINOR) +
                          "; upgrade the kernel or build against an older SDK");
  }
  if (std::strcmp(d->fingerprint, SAMOKODER_TOOLCHAIN_FINGERPRINT) != 0) {
    return fail_named(FailureReason::kFingerprint,
                      std::string("built with toolchain \"") + d->fingerprint + "\", this kernel needs \"" +
                          SAMOKODER_TOOLCHAIN_FINGERPRINT + "\"; rebuild it with the same compiler and SDK");
  }
  if (kind_name(d->kind) == "unknown") {
    return fail_named(FailureReason::kBadDescriptor, "unknown plugin kind " + std::to_string(d->kind));
  }
  if (!valid_id(d->id)) {
    return fail_named(FailureReason::kBadDescriptor,
                      std::string("invalid id \"") + d->id + "\"; expected \"<kind>.<name>\" in lowercase");
  }
  const std::string_view id = d->id;
  if (id.substr(0, id.find('.')) != kind_name(d->kind)) {
    return fail_named(FailureReason::kBadDescriptor, std::string("id \"") + d->id +
                                                         "\" does not start with its kind \"" +
                                                         std::string(kind_name(d->kind)) + ".\"");
  }
  if (!expected_id.empty() && id != expected_id) {
    return fail_named(FailureReason::kIdMismatch, std::string("declares id \"") + d->id +
                                                      "\" but is configured as \"" + expected_id + "\"");
  }
  if (!is_semver(d->version)) {
    return fail_named(FailureReason::kBadDescriptor,
                      std::string("version \"") + d->version + "\" is not MAJOR.MINOR.PATCH");
  }
  named.reason = FailureReason::kNone;
  return named;
}

Generation::~Generation() {
  teardown();
}

bool Generation::teardown() noexcept {
  if (torn_down_) return unmapped_;
  torn_down_ = true;
  auto log = core::logger("plugins");
  if (host_ && !host_->close_scheduler()) {
    // A background task is still inside plugin code: destroying the instance, its host or the library
    // under it would crash that thread whenever it runs on. They stay for the life of the process.
    log->error("plugin {} generation {}: a background task did not stop; the generation stays mapped",
               descriptor_.id, number_);
    core::keep_until_exit(std::make_unique<sdk::Plugin*>(instance_));
    core::keep_until_exit(std::move(host_));
    core::keep_until_exit(std::make_unique<boost::dll::shared_library>(std::move(library_)));
    instance_ = nullptr;
    kind_interface_ = nullptr;
    state_transfer_ = nullptr;
    raw_descriptor_ = nullptr;
    unmapped_ = false;
    return unmapped_;
  }
  if (instance_ != nullptr) {
    if (initialized_) {
      if (auto thrown = guard([&] { instance_->shutdown(); })) {
        log->error("plugin {} generation {}: shutdown {}", descriptor_.id, number_, *thrown);
      }
    }
    if (host_) {  // their callbacks are plugin code: gone before destroy
      host_->close_http();
      host_->close_processes();
    }
    if (auto thrown = guard([&] { raw_descriptor_->destroy(instance_); })) {
      log->error("plugin {} generation {}: destroy {}", descriptor_.id, number_, *thrown);
    }
    instance_ = nullptr;
    kind_interface_ = nullptr;
    state_transfer_ = nullptr;
  }
  host_.reset();
  raw_descriptor_ = nullptr;
  if (library_.is_loaded()) library_.unload();
  unmapped_ = private_copy_.empty() || !is_resident(private_copy_);
  if (!private_copy_.empty()) {
    std::error_code ec;
    fs::remove(private_copy_, ec);  // a still-mapped copy stays readable through its mapping
  }
  return unmapped_;
}

std::variant<std::unique_ptr<Generation>, LoadFailure> Loader::load(const LoadRequest& request,
                                                                    const ProgressFn& progress) const {
  auto report = [&](PluginState state) {
    if (progress) progress(state);
  };
  const std::string file_name = request.file.string();
  std::error_code ec;
  if (!fs::is_regular_file(request.file, ec)) {
    return fail(FailureReason::kFileNotFound, file_name + ": plugin file does not exist");
  }
  auto bytes = core::read_file(request.file);
  if (!bytes.ok()) return fail(FailureReason::kFileNotFound, bytes.status().message());
  const std::string sha256 = core::sha256_hex(*bytes);
  auto with_sha = [&](LoadFailure failure) {
    failure.sha256 = sha256;
    return failure;
  };

  auto elf = inspect_elf_image(*bytes);
  if (!elf.ok()) return with_sha(fail(FailureReason::kNotElf, file_name + ": " + elf.status().message()));
  if (!elf->exports(SAMOKODER_PLUGIN_ENTRY_SYMBOL)) {
    return with_sha(fail(FailureReason::kNoEntrySymbol,
                         file_name + ": does not export " SAMOKODER_PLUGIN_ENTRY_SYMBOL
                                     "; export the plugin with SAMOKODER_PLUGIN(...) and build it with "
                                     "samokoder_add_plugin()"));
  }

  report(PluginState::kValidated);

  std::unique_ptr<Generation> generation(new Generation());
  generation->number_ = request.generation;
  generation->source_file_ = fs::absolute(request.file, ec);
  generation->sha256_ = sha256;
  generation->unique_symbols_ = elf->unique_symbols;
  generation->private_copy_ = private_copy_path(request.runtime_dir, request.expected_id, request.generation);
  if (auto status = write_private_copy(generation->private_copy_, *bytes); !status.ok()) {
    generation->private_copy_.clear();
    return with_sha(fail(FailureReason::kStagingFailed, status.message()));
  }

  // From here on a failure must tear the half-built generation down; the result says if it unmapped.
  auto abandon = [&](LoadFailure failure) {
    failure.sha256 = sha256;
    failure.pinned = !generation->teardown();
    return failure;
  };
  try {
    generation->library_.load(generation->private_copy_.string(),
                              boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return abandon(
        fail(FailureReason::kDlopenFailed, file_name + ": the dynamic loader refused it: " + e.what()));
  }

  const samokoder_plugin_descriptor* raw = nullptr;
  if (auto thrown = guard([&] {
        raw = generation->library_.get<const samokoder_plugin_descriptor*()>(SAMOKODER_PLUGIN_ENTRY_SYMBOL)();
      })) {
    return abandon(
        fail(FailureReason::kBadDescriptor, file_name + ": " SAMOKODER_PLUGIN_ENTRY_SYMBOL " " + *thrown));
  }
  LoadFailure verdict = check_descriptor(raw, request.expected_id, file_name);
  if (verdict.reason != FailureReason::kNone) return abandon(std::move(verdict));
  generation->descriptor_ = *verdict.descriptor;
  generation->raw_descriptor_ = raw;
  auto abandon_named = [&](FailureReason reason, std::string message) {
    LoadFailure failure = fail(reason, file_name + ": " + std::move(message));
    failure.descriptor = generation->descriptor_;
    return abandon(std::move(failure));
  };

  void* created = nullptr;
  if (auto thrown = guard([&] { created = raw->create(); })) {
    return abandon_named(FailureReason::kCreateFailed, "create " + *thrown);
  }
  if (created == nullptr) return abandon_named(FailureReason::kCreateFailed, "create returned NULL");
  generation->instance_ = static_cast<sdk::Plugin*>(created);
  generation->kind_interface_ = cast_to_kind(generation->instance_, raw->kind);
  if (generation->kind_interface_ == nullptr) {
    return abandon_named(FailureReason::kCreateFailed,
                         "declares kind " + std::string(kind_name(raw->kind)) +
                             " but its instance does not implement that interface");
  }

  generation->state_transfer_ = dynamic_cast<sdk::StateTransfer*>(generation->instance_);
  report(PluginState::kLoaded);

  generation->host_ = std::make_unique<PluginHost>(generation->descriptor_.id, request.generation,
                                                   request.config, registry_, clock_, services_);
  generation->initialized_ = true;
  sdk::Status init_status;
  if (auto thrown = guard([&] { init_status = generation->instance_->init(*generation->host_); })) {
    return abandon_named(FailureReason::kInitFailed, "init " + *thrown);
  }
  if (!init_status.ok())
    return abandon_named(FailureReason::kInitFailed, "init failed: " + init_status.to_string());

  if (request.run_self_test) {
    sdk::Status self_test_status;
    if (auto thrown = guard([&] { self_test_status = generation->instance_->self_test(); })) {
      return abandon_named(FailureReason::kSelfTestFailed, "self_test " + *thrown);
    }
    if (!self_test_status.ok()) {
      return abandon_named(FailureReason::kSelfTestFailed,
                           "self_test failed: " + self_test_status.to_string());
    }
  }
  generation->loaded_at_ = clock_.now();
  return generation;
}

}  // namespace samokoder::plugins
