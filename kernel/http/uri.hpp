// Percent-decoding for request paths and query strings (RFC 3986 section 2.1).
//
// Ownership: free functions over caller-owned strings. Thread-safety: stateless, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace samokoder::http {

// Appends the decoded form of `in` to `out`. Returns false on a malformed escape ("%4", "%zz") or an
// escaped NUL ("%00"), which no path segment legitimately contains and which would truncate C strings
// further down; `out` then holds a partial result the caller must discard.
bool decode_path_segment(std::string_view in, std::string& out);

// Decodes one query-string component: "+" is a space (HTML forms) and a malformed escape is kept
// literally, since a query is only ever looked up, never used to locate a resource.
std::string decode_query_component(std::string_view in);

// The first value of `name` in a raw query string ("a=1&b=x%20y"), decoded; a key without "=" yields
// an empty string; a missing key yields nullopt. Keys are compared after decoding.
std::optional<std::string> find_query_param(std::string_view query, std::string_view name);

}  // namespace samokoder::http
