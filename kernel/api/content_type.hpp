// The Content-Type a project file is served with: chosen from the file name's extension for common
// web and source formats, else "text/plain; charset=utf-8" for UTF-8 text without NUL and
// "application/octet-stream" for anything else. Text types always name charset=utf-8 only when the
// bytes are valid UTF-8, so a browser never guesses an encoding.
//
// Serving user content is safe on the API origin because every file response also carries a
// sandboxing Content-Security-Policy and nosniff (set by the files handler), not because of the type.
//
// Thread-safety: reentrant.
#pragma once

#include <string>
#include <string_view>

namespace samokoder::api {

std::string content_type_for(std::string_view path, std::string_view content);

}  // namespace samokoder::api
