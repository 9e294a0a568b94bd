// The conventions every store of the storage port shares, and the types they share: Timestamp and
// keyset pagination (PageRequest, Page). storage.hpp gathers the stores; each store's header names
// what is particular to it.
//
// Ownership: plain values. Thread-safety: none needed (values).
//
// ---------------------------------------------------------------------------------------------------
// Conventions shared by every store
//
// Ids: every record id the backend creates is an opaque string of 32 lowercase hex digits (128 bits,
//   UUIDv7 layout without dashes: 48-bit Unix milliseconds, then random bits), so ids are not
//   enumerable and look the same on every backend. Callers never parse them. A string that is not an
//   id issued by this database (wrong length, not hex, unknown) yields kNotFound, never
//   kInvalidArgument, so a URL segment can be passed straight through.
//
// Time: Timestamp is std::chrono::system_clock::time_point. Backends store microseconds: every
//   timestamp read back equals the written one floored to microseconds (see to_storage_precision).
//   Timestamps the backend sets itself (created_at, updated_at, occurred_at, "now" in expiry checks)
//   come from HostServices::now(), so the kernel's (and the tests') clock governs them.
//
// Bytes: std::string is used for binary data (file content, ciphertext, nonce); it may hold NULs.
//   Every other string (text) must be UTF-8 without NUL, else kInvalidArgument.
//
// JSON: any nlohmann::json value round-trips by value (operator==); object key order is not kept.
//
// Errors (StatusCode):
//   kNotFound           the record does not exist, or belongs to another owner (the two are
//                       indistinguishable on purpose), or a referenced parent does not exist
//   kAlreadyExists      a unique key collided (user email, refresh/access token hash, ...)
//   kInvalidArgument    malformed input: empty required field, text that is not UTF-8 without NUL
//                       (also inside JSON), page limit outside 1..kMaxPageLimit,
//                       a cursor this backend did not issue for this list, a malformed file path
//   kFailedPrecondition the record is not in a state that allows the call (rotating an already
//                       rotated refresh token, an expected run state that does not match, a run lease
//                       held by another node, re-entrant use inside a transaction, a schema newer
//                       than the backend)
//   kAborted            a concurrency conflict the backend could not resolve (e.g. a PostgreSQL
//                       serialization failure inside a transaction); the caller may retry the whole
//                       operation. Single calls outside transactions are retried by the backend.
//   kUnavailable        the database cannot be reached or is busy beyond its configured timeout;
//                       backends never surface SQLite's "database is locked" as anything else
//   kUnimplemented      only from backup() on backends that delegate backups to external tools
//   kDataLoss           the database is corrupt
//   kInternal           anything else; the message says what, the backend logs the details
//
// Lists: paginated lists take a PageRequest and return a Page. Pagination is keyset-based: pages
//   never overlap and never skip a record that existed when the first page was read and still exists,
//   even while records are inserted concurrently. next_cursor is empty exactly when no further
//   record existed at the time of the query. Each list documents its order. Cursors are opaque,
//   backend-specific, and only valid for the list (and arguments) that issued them.
//
// Owner scoping: every call about a project or something inside it (files, runs, steps, events,
//   previews) takes the owner's user id and matches it in the query itself, so one user can never
//   read, change, delete or list another user's data: a mismatch is kNotFound.
//
// Deletion cascades: deleting a user deletes everything the user owns (sessions and refresh tokens,
//   provider keys, access tokens, projects and all below them, LLM request records, notifications);
//   login attempts and audit events outlive it (audit events keep the actor id as written). Deleting
//   a project deletes its file versions, runs, steps, events and preview, and empties project_id and
//   run_id of its LLM request records (usage totals survive); deleting a run step empties the
//   run_step_id of file versions it wrote. Blobs no version references any more are reclaimed by
//   purge_unreferenced_blobs() (FileStore).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace samokoder::sdk {

using Timestamp = std::chrono::system_clock::time_point;

// The precision every backend stores timestamps with.
constexpr Timestamp to_storage_precision(Timestamp t) noexcept {
  return Timestamp(std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()));
}

// ---- Pagination ------------------------------------------------------------------------------------

inline constexpr std::uint32_t kMaxPageLimit = 500;

struct PageRequest {
  std::uint32_t limit = 50;  // 1..kMaxPageLimit, else kInvalidArgument
  std::string cursor;        // empty: the first page; else a next_cursor from the same list
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;  // empty when there is nothing after this page
};

}  // namespace samokoder::sdk
