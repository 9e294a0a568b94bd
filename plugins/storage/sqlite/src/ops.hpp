// SqliteOps: every store operation of the storage port as SQL against one SQLite connection.
//
// It knows nothing about transactions or connection routing: SqliteStorage (sqlite_storage.cpp)
// opens the right transaction on the right connection (BEGIN IMMEDIATE on the writer for writes,
// a deferred read transaction on a pooled reader for reads) and calls one of these inside it, or
// hands this object to a transaction function. Every write here therefore runs inside a write
// transaction, so read-then-write sequences (version numbers, event seq, compare-and-set) are
// serialised by SQLite's single writer.
//
// Ownership: borrows the connection and the host, both of which outlive it.
// Thread-safety: none; one instance is used by one thread for the span of one transaction.
#pragma once

#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/stores.hpp>

#include "connection.hpp"

namespace samokoder::storage_sqlite {

class SqliteOps final : public storage_common::AllStores<sdk::Stores> {
 public:
  SqliteOps(Connection& connection, sdk::HostServices& host) : db_(connection), host_(host) {}

  Connection& connection() noexcept { return db_; }

#define SAMOKODER_STORE_OPERATION(access, Store, Result, name, parameters, arguments) \
  Result name parameters override;
#include <samokoder/storage_common/store_operations.def>
#undef SAMOKODER_STORE_OPERATION

  // Row counts of the whole database (Storage::stats).
  sdk::Result<sdk::StorageStats> stats();

 private:
  sdk::Timestamp now() const {
    return sdk::to_storage_precision(host_.now());
  }
  // kNotFound unless the project exists and belongs to the owner.
  sdk::Status check_project_owner(std::string_view owner_id, std::string_view project_id);
  sdk::Result<sdk::Run> load_run(std::string_view run_id, std::string_view owner_id);
  sdk::Result<sdk::FileVersion> load_file_version(std::string_view project_id, std::string_view path,
                                                  std::int64_t version);

  Connection& db_;
  sdk::HostServices& host_;
};

}  // namespace samokoder::storage_sqlite
