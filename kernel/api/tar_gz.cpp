#include "api/tar_gz.hpp"

#include <array>
#include <cstring>

#include <zlib.h>

namespace samokoder::api {
namespace {

constexpr std::size_t kBlock = 512;

// Field offsets and sizes of the ustar header (POSIX.1-1988 / pax).
struct Field {
  std::size_t offset;
  std::size_t size;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr std::size_t kTypeflag = 156;
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kPrefix{345, 155};

using Header = std::array<char, kBlock>;

void put(Header& header, Field field, std::string_view value) {
  std::memcpy(header.data() + field.offset, value.data(), std::min(value.size(), field.size));
}

// Zero-padded octal filling the field but its last byte, which stays NUL.
void put_octal(Header& header, Field field, std::uint64_t value) {
  std::string digits(field.size - 1, '0');
  for (std::size_t i = digits.size(); i-- > 0 && value != 0; value >>= 3) {
    digits[i] = static_cast<char>('0' + (value & 7));
  }
  put(header, field, digits);
}

// Splits `name` into a ustar prefix and name at a '/', or returns false when it does not fit.
bool split_ustar(std::string_view name, std::string_view& prefix, std::string_view& rest) {
  if (name.size() <= kName.size) {
    prefix = {};
    rest = name;
    return true;
  }
  for (std::size_t slash = name.find('/'); slash != std::string_view::npos;
       slash = name.find('/', slash + 1)) {
    if (slash <= kPrefix.size && name.size() - slash - 1 <= kName.size && slash + 1 < name.size()) {
      prefix = name.substr(0, slash);
      rest = name.substr(slash + 1);
      return true;
    }
  }
  return false;
}

// A pax extended-header record "<len> path=<value>\n", where <len> counts the whole record.
std::string pax_record(std::string_view key, std::string_view value) {
  const std::size_t body = 1 + key.size() + 1 + value.size() + 1;  // ' ' key '=' value '\n'
  std::size_t length = body + 1;
  while (std::to_string(length).size() + body != length)
    length = std::to_string(length).size() + body;
  return std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

sdk::Status check_name(std::string_view name) {
  if (name.empty()) return sdk::Status::invalid_argument("archive entry name is empty");
  if (name.find('\0') != std::string_view::npos)
    return sdk::Status::invalid_argument("archive entry name contains NUL");
  if (name.front() == '/') return sdk::Status::invalid_argument("archive entry name is absolute");
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t slash = std::min(name.find('/', start), name.size());
    const std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") {
      return sdk::Status::invalid_argument("archive entry name has an empty, '.' or '..' component");
    }
    start = slash + 1;
  }
  return {};
}

}  // namespace

struct TarGzWriter::Stream {
  z_stream z{};
  bool open = false;
  ~Stream() {
    if (open) deflateEnd(&z);
  }
};

TarGzWriter::TarGzWriter(std::string& out, int level) : out_(out), stream_(std::make_unique<Stream>()) {
  // windowBits 15 + 16: a gzip wrapper (header and CRC-32 trailer) instead of zlib's.
  stream_->open = deflateInit2(&stream_->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
}

TarGzWriter::~TarGzWriter() = default;

sdk::Status TarGzWriter::write(std::string_view bytes) {
  if (!stream_->open) return sdk::Status::internal("zlib could not be initialised");
  if (bytes.empty()) return {};
  tar_bytes_ += bytes.size();
  z_stream& z = stream_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  std::array<char, 64 * 1024> chunk{};
  do {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    if (deflate(&z, Z_NO_FLUSH) == Z_STREAM_ERROR) return sdk::Status::internal("zlib deflate failed");
    out_.append(chunk.data(), chunk.size() - z.avail_out);
  } while (z.avail_in != 0 || z.avail_out == 0);
  return {};
}

sdk::Status TarGzWriter::pad(std::uint64_t size) {
  static constexpr std::array<char, kBlock> kZeros{};
  const std::size_t rest = static_cast<std::size_t>(size % kBlock);
  if (rest == 0) return {};
  return write(std::string_view(kZeros.data(), kBlock - rest));
}

sdk::Status TarGzWriter::write_header(std::string_view name, char type, std::uint64_t size,
                                      std::int64_t mtime) {
  Header header{};
  std::string_view prefix;
  std::string_view rest;
  if (!split_ustar(name, prefix, rest)) return sdk::Status::internal("name does not fit a ustar header");
  put(header, kName, rest);
  put(header, kPrefix, prefix);
  put_octal(header, kMode, 0644);
  put_octal(header, kUid, 0);
  put_octal(header, kGid, 0);
  put_octal(header, kSize, size);
  put_octal(header, kMtime, mtime < 0 ? 0 : static_cast<std::uint64_t>(mtime));
  header[kTypeflag] = type;
  put(header, kMagic, std::string_view("ustar\0", 6));
  put(header, kVersion, "00");
  // The checksum is computed with its own field as spaces, then stored as 6 octal digits, NUL, space.
  std::memset(header.data() + kChecksum.offset, ' ', kChecksum.size);
  unsigned sum = 0;
  for (const char c : header)
    sum += static_cast<unsigned char>(c);
  Header digits{};
  put_octal(digits, Field{0, 7}, sum);
  std::memcpy(header.data() + kChecksum.offset, digits.data(), 6);
  header[kChecksum.offset + 6] = '\0';
  header[kChecksum.offset + 7] = ' ';
  return write(std::string_view(header.data(), header.size()));
}

sdk::Status TarGzWriter::add_file(std::string_view name, std::string_view content, std::int64_t mtime) {
  if (finished_) return sdk::Status::failed_precondition("archive is already finished");
  SAMOKODER_RETURN_IF_ERROR(check_name(name));
  std::string_view prefix;
  std::string_view rest;
  std::string short_name(name);
  if (!split_ustar(name, prefix, rest)) {
    // The full name travels in a pax record; the ustar name is a truncated stand-in for old readers.
    const std::string record = pax_record("path", name);
    std::string pax_name = "PaxHeaders/" + std::string(name.substr(name.size() - 80));
    while (pax_name.find("//") != std::string::npos)
      pax_name.replace(pax_name.find("//"), 2, "/");
    SAMOKODER_RETURN_IF_ERROR(write_header(pax_name.substr(0, kName.size), 'x', record.size(), mtime));
    SAMOKODER_RETURN_IF_ERROR(write(record));
    SAMOKODER_RETURN_IF_ERROR(pad(record.size()));
    short_name = std::string(name.substr(name.size() - kName.size));
    if (const auto slash = short_name.find('/'); slash != std::string::npos) short_name.erase(0, slash + 1);
  }
  SAMOKODER_RETURN_IF_ERROR(write_header(short_name, '0', content.size(), mtime));
  SAMOKODER_RETURN_IF_ERROR(write(content));
  return pad(content.size());
}

sdk::Status TarGzWriter::finish() {
  if (finished_) return {};
  static constexpr std::array<char, 2 * kBlock> kEnd{};
  SAMOKODER_RETURN_IF_ERROR(write(std::string_view(kEnd.data(), kEnd.size())));
  z_stream& z = stream_->z;
  std::array<char, 64 * 1024> chunk{};
  int result = Z_OK;
  do {
    z.next_in = nullptr;
    z.avail_in = 0;
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    result = deflate(&z, Z_FINISH);
    if (result == Z_STREAM_ERROR) return sdk::Status::internal("zlib deflate failed");
    out_.append(chunk.data(), chunk.size() - z.avail_out);
  } while (result != Z_STREAM_END);
  finished_ = true;
  return {};
}

}  // namespace samokoder::api
