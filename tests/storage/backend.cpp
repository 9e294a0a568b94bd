#include "backend.hpp"

namespace samokoder::testing {

std::vector<StorageBackend>& storage_backends() {
  static std::vector<StorageBackend> backends;
  return backends;
}

bool register_storage_backend(StorageBackend backend) {
  storage_backends().push_back(std::move(backend));
  return true;
}

}  // namespace samokoder::testing
