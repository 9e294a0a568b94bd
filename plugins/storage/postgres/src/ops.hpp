// PgOps: every store operation of the storage port as SQL on one borrowed PostgreSQL connection.
//
// Outside a transaction (Storage's direct calls) an operation that needs several statements opens its
// own READ COMMITTED transaction with begin_unit(), and the caller commits or rolls it back by what the
// operation returned. Inside Storage::transaction the caller's SERIALIZABLE transaction (and the
// savepoint around each call) already makes the operation atomic, so begin_unit() does nothing.
// Concurrency guarantees come from row locks and conditional writes, so they hold under both levels.
//
// Ownership: borrows the connection and the host for its own lifetime (one call).
// Thread-safety: none; one object serves one call on one thread.
#pragma once

#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/stores.hpp>

#include "pg.hpp"

namespace samokoder::storage_postgres {

class PgOps final : public storage_common::AllStores<sdk::Stores> {
 public:
  PgOps(Connection& conn, sdk::HostServices& host, bool in_transaction) noexcept
      : conn_(conn), host_(host), in_transaction_(in_transaction) {}

  // True when begin_unit() opened a transaction the caller must end.
  bool unit_open() const noexcept { return unit_open_; }

#define SAMOKODER_STORE_OPERATION(access, Store, Result, name, parameters, arguments) \
  Result name parameters override;
#include <samokoder/storage_common/store_operations.def>
#undef SAMOKODER_STORE_OPERATION

  // Row counts of the whole database (Storage::stats).
  sdk::Result<sdk::StorageStats> stats();

 private:
  sdk::Status begin_unit();
  // Locks (project, path) for the rest of the unit after checking the project belongs to the owner.
  sdk::Status lock_file_path(std::string_view owner_id, std::string_view project_id, std::string_view path);
  sdk::Status check_run_step(std::string_view project_id, std::string_view run_step_id);
  sdk::Status check_project(std::string_view owner_id, std::string_view project_id);
  sdk::Status check_run(std::string_view owner_id, std::string_view run_id);
  Rows exec(std::string_view sql, const Params& params = Params(), bool binary = false) {
    return conn_.exec(sql, params, binary);
  }
  sdk::Timestamp now() const {
    return host_.now();
  }

  Connection& conn_;
  sdk::HostServices& host_;
  const bool in_transaction_;
  bool unit_open_ = false;
};

}  // namespace samokoder::storage_postgres
