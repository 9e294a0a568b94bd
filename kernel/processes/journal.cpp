#include "processes/journal.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/logging.hpp"
#include "processes/child.hpp"

namespace samokoder::processes {
namespace fs = std::filesystem;
namespace {

// Kills the members of session `id` (whose leader is gone) one by one; returns how many there were.
std::size_t kill_orphaned_group(long id) {
  std::size_t members = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(name);
    // Fields 5 and 6: process group and session.
    const auto fields = stat_fields(pid);
    if (fields.size() < 4 || fields[5 - 3] != std::to_string(id) || fields[6 - 3] != std::to_string(id))
      continue;
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ++members;
  }
  return members;
}

}  // namespace

ChildJournal::ChildJournal(fs::path directory)
    : directory_(std::move(directory)),
      server_pid_(static_cast<int>(::getpid())),
      server_start_time_(process_start_time(server_pid_)) {}

fs::path ChildJournal::file_of(int pid, std::uint64_t start_time) const {
  return directory_ / (std::to_string(pid) + "-" + std::to_string(start_time) + ".child");
}

sdk::Status ChildJournal::open() {
  if (directory_.empty()) return sdk::Status::ok_status();
  std::error_code ec;
  fs::create_directories(directory_, ec);
  if (ec) {
    return sdk::Status::unavailable("processes.state_dir \"" + directory_.string() +
                                    "\" cannot be created: " + ec.message());
  }
  fs::permissions(directory_, fs::perms::owner_all, fs::perm_options::replace, ec);
  return sdk::Status::ok_status();
}

sdk::Status ChildJournal::record(int pid, std::uint64_t start_time, const std::string& owner) {
  if (directory_.empty()) return sdk::Status::ok_status();
  // No fsync: the record must survive the server process dying, not the machine; the page cache does.
  std::ofstream out(file_of(pid, start_time), std::ios::trunc);
  out << pid << ' ' << start_time << ' ' << owner << ' ' << server_pid_ << ' ' << server_start_time_ << '\n';
  out.close();
  if (!out) {
    return sdk::Status::unavailable("cannot record child " + std::to_string(pid) + " in \"" +
                                    directory_.string() + "\": " + std::strerror(errno));
  }
  return sdk::Status::ok_status();
}

void ChildJournal::forget(int pid, std::uint64_t start_time) noexcept {
  if (directory_.empty()) return;
  std::error_code ec;
  fs::remove(file_of(pid, start_time), ec);
}

ChildJournal::SweepReport ChildJournal::sweep() {
  SweepReport report;
  if (directory_.empty()) return report;
  auto log = core::logger("processes");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    if (entry.path().extension() != ".child") continue;
    std::ifstream in(entry.path());
    long pid = 0;
    std::uint64_t start_time = 0;
    std::string owner;
    long server_pid = 0;
    std::uint64_t server_start_time = 0;
    const bool parsed =
        static_cast<bool>(in >> pid >> start_time >> owner >> server_pid >> server_start_time);
    if (parsed && server_start_time != 0 &&
        process_start_time(static_cast<int>(server_pid)) == server_start_time) {
      continue;  // the server that started it still runs and still owns it
    }
    ++report.records;
    if (parsed && pid > 1) {
      const std::uint64_t now_start = process_start_time(static_cast<int>(pid));
      bool ended = false;
      if (now_start == start_time && start_time != 0) {
        ended = ::kill(static_cast<pid_t>(-pid), SIGKILL) == 0;
      } else if (now_start == 0) {
        // The leader is gone; members of its group may live on (a shell's background job).
        ended = kill_orphaned_group(pid) > 0;
      }  // else: the pid was recycled by an unrelated process, and the old group is gone
      if (ended) {
        ++report.ended;
        log->warn("ended child group {} of {} left running by an earlier run of the server", pid, owner);
      }
    }
    in.close();
    std::error_code remove_error;
    fs::remove(entry.path(), remove_error);
  }
  return report;
}

}  // namespace samokoder::processes
