// The shape both storage backends share: one object that is every store at once, and the forwarding
// layer that turns each store operation into "wrap the backend's SQL operation".
//
// AllStores<Base> derives from Base (sdk::Stores or sdk::Storage) and from every store interface,
// and answers each accessor of sdk::Stores with itself: a backend implements the operations as
// members of one class and hands that class out as any store.
//
// ForwardingStores<Derived, Ops, Base> implements every operation of store_operations.def as
//   return self().template invoke<StoreAccess::kRead or kWrite>("name", [&](Ops& ops) { ... });
// so a backend writes only invoke(): how one operation runs outside a transaction (its own unit of
// work, retried or batched) or inside one (a savepoint). Why: the two wrappers used to list every
// operation again in each backend; now the list is written once, in store_operations.def.
//
// A backend's SQL class derives from AllStores<sdk::Stores> and declares the operations from the same
// list, inside its class body:
//   #define SAMOKODER_STORE_OPERATION(access, Store, Result, name, parameters, arguments)
//     Result name parameters override;   (one line in the code)
//   #include <samokoder/storage_common/store_operations.def>
//   #undef SAMOKODER_STORE_OPERATION
//
// Ownership: none beyond the derived class's. Thread-safety: whatever Derived::invoke provides.
#pragma once

#include <samokoder/sdk/storage.hpp>

namespace samokoder::storage_common {

// Whether an operation may change the database (store_operations.def names it per operation).
enum class StoreAccess { kRead, kWrite };

template <typename Base>
class AllStores : public Base,
                  public sdk::UserStore,
                  public sdk::SessionStore,
                  public sdk::TokenRevocationStore,
                  public sdk::LoginAttemptStore,
                  public sdk::AuditStore,
                  public sdk::ProviderKeyStore,
                  public sdk::AccessTokenStore,
                  public sdk::ProjectStore,
                  public sdk::FileStore,
                  public sdk::RunStore,
                  public sdk::LeaseStore,
                  public sdk::LlmRequestStore,
                  public sdk::PreviewStore,
                  public sdk::NotificationStore {
 public:
  sdk::UserStore& users() final { return *this; }
  sdk::SessionStore& sessions() final { return *this; }
  sdk::TokenRevocationStore& token_revocations() final { return *this; }
  sdk::LoginAttemptStore& login_attempts() final { return *this; }
  sdk::AuditStore& audit() final { return *this; }
  sdk::ProviderKeyStore& provider_keys() final { return *this; }
  sdk::AccessTokenStore& access_tokens() final { return *this; }
  sdk::ProjectStore& projects() final { return *this; }
  sdk::FileStore& files() final { return *this; }
  sdk::RunStore& runs() final { return *this; }
  sdk::LeaseStore& leases() final { return *this; }
  sdk::LlmRequestStore& llm_requests() final { return *this; }
  sdk::PreviewStore& previews() final { return *this; }
  sdk::NotificationStore& notifications() final { return *this; }
};

#define SAMOKODER_STORE_ACCESS_read ::samokoder::storage_common::StoreAccess::kRead
#define SAMOKODER_STORE_ACCESS_write ::samokoder::storage_common::StoreAccess::kWrite

template <typename Derived, typename Ops, typename Base>
class ForwardingStores : public AllStores<Base> {
 public:
#define SAMOKODER_STORE_OPERATION(access, Store, Result, name, parameters, arguments) \
  Result name parameters override {                                                   \
    return self().template invoke<SAMOKODER_STORE_ACCESS_##access>(                   \
        #name, [&](Ops& ops) -> Result { return ops.name arguments; });               \
  }
#include <samokoder/storage_common/store_operations.def>
#undef SAMOKODER_STORE_OPERATION

 private:
  Derived& self() noexcept {
    return static_cast<Derived&>(*this);
  }
};

}  // namespace samokoder::storage_common
