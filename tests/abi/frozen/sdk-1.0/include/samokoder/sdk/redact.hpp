// redact_credentials: the one place that takes credentials out of text before it goes into an error
// message, a log line or an HTTP answer. Header-only so that plugins (which include only the SDK) and
// the kernel share it.
//
// What is replaced by "***":
//   - the password of every URL's userinfo: "postgres://user:pw@host" -> "postgres://user:***@host",
//     also in a URL too malformed to parse (the userinfo runs to the last '@' before a space, quote,
//     '?' or '#');
//   - the value of every `password=` key (any key ending in "password", any case), as libpq keyword/value
//     conninfo strings ("password=pw", "password = 'p w'") and URL query parameters ("?password=pw&...")
//     write it;
//   - with `conninfo` (the connection string the text may echo, as its owner knows it): every occurrence
//     of each password that string carries, raw and percent-decoded, wherever the text quotes it
//     (libpq's "invalid percent-encoded token: "..."" quotes a bare fragment of the URL).
// It over-redacts rather than leaks: an '@' later in a URL's path widens the redacted span.
//
// Ownership: returns an owned string. Thread-safety: reentrant.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace samokoder::sdk {

inline constexpr std::string_view kRedacted = "***";

namespace redact_detail {

inline bool ends_value(char c) noexcept {
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '"' || c == '\'' || c == '&' || c == '#';
}

inline bool ends_userinfo(char c) noexcept {
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '"' || c == '\'' || c == '?' || c == '#';
}

inline bool iequals_at(std::string_view text, std::size_t at, std::string_view word) noexcept {
  if (text.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  }
  return true;
}

// The [begin, end) spans of `text` that hold credentials, in order and not overlapping.
inline std::vector<std::pair<std::size_t, std::size_t>> credential_spans(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  constexpr std::string_view kKey = "password";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "://") == 0) {
      const std::size_t start = i + 3;
      std::size_t end = start;
      while (end < text.size() && !ends_userinfo(text[end]))
        ++end;
      const std::size_t at = text.substr(start, end - start).rfind('@');
      if (at != std::string_view::npos) {
        const std::size_t colon = text.substr(start, at).find(':');
        if (colon != std::string_view::npos && colon + 1 < at) {
          spans.emplace_back(start + colon + 1, start + at);
        }
        i = start + at;
      }
      continue;
    }
    if (!iequals_at(text, i, kKey)) continue;
    std::size_t j = i + kKey.size();
    while (j < text.size() && text[j] == ' ')
      ++j;
    if (j >= text.size() || text[j] != '=') continue;
    ++j;
    while (j < text.size() && text[j] == ' ')
      ++j;
    std::size_t end = j;
    if (j < text.size() && text[j] == '\'') {
      // libpq's quoted value: backslash escapes; an unterminated quote runs to the end of the text.
      end = j + 1;
      while (end < text.size() && text[end] != '\'')
        end += text[end] == '\\' ? 2 : 1;
      end = end < text.size() ? end + 1 : text.size();
    } else {
      while (end < text.size() && !ends_value(text[end]))
        ++end;
    }
    if (end > j) spans.emplace_back(j, end);
    i = end > i ? end - 1 : i;
  }
  return spans;
}

inline std::string percent_decoded(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// The passwords `conninfo` carries, as they may be quoted: raw, unquoted and percent-decoded.
inline std::vector<std::string> secrets_of(std::string_view conninfo) {
  std::vector<std::string> secrets;
  auto add = [&](std::string_view value) {
    if (!value.empty()) secrets.emplace_back(value);
    if (!value.empty() && value.front() == '\'') value.remove_prefix(1);
    if (!value.empty() && value.back() == '\'') value.remove_suffix(1);
    if (!value.empty()) {
      secrets.emplace_back(value);
      secrets.push_back(percent_decoded(value));
    }
  };
  for (const auto& [begin, end] : credential_spans(conninfo))
    add(conninfo.substr(begin, end - begin));
  // "user:pw@host/db" without a scheme: libpq reads it as a keyword/value string and quotes it whole.
  if (conninfo.find("://") == std::string_view::npos && conninfo.find('=') == std::string_view::npos) {
    const std::size_t at = conninfo.rfind('@');
    const std::size_t colon = conninfo.substr(0, at == std::string_view::npos ? 0 : at).find(':');
    if (at != std::string_view::npos && colon != std::string_view::npos)
      add(conninfo.substr(colon + 1, at - colon - 1));
  }
  return secrets;
}

}  // namespace redact_detail

inline std::string redact_credentials(std::string_view text, std::string_view conninfo = {}) {
  std::string known(text);
  for (const std::string& secret : redact_detail::secrets_of(conninfo)) {
    for (std::size_t at = known.find(secret); at != std::string::npos;
         at = known.find(secret, at + kRedacted.size()))
      known.replace(at, secret.size(), kRedacted);
  }
  std::string out;
  std::size_t copied = 0;
  for (const auto& [begin, end] : redact_detail::credential_spans(known)) {
    out.append(known, copied, begin - copied);
    out += kRedacted;
    copied = end;
  }
  out.append(known, copied, std::string::npos);
  return out;
}

}  // namespace samokoder::sdk
