# Turns a file into a C++ source defining its bytes, so a document kept as a readable file in the tree
# (the OpenAPI description) is compiled into the kernel.
#   cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -DSYMBOL=<name> -P embed_file.cmake
# defines `extern const unsigned char <SYMBOL>[]` and `extern const std::size_t <SYMBOL>_size` in
# namespace samokoder::api::embedded. An array, not a string literal: literals over 64 KiB trip
# -Woverlength-strings under -Wpedantic.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by embed_file.cmake; do not edit.
#include <cstddef>

namespace samokoder::api::embedded {
extern const unsigned char ${SYMBOL}[];
extern const std::size_t ${SYMBOL}_size;
const unsigned char ${SYMBOL}[] = {
${bytes}0x00};
const std::size_t ${SYMBOL}_size = ${size};
}  // namespace samokoder::api::embedded
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
