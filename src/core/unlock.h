// Unwraps every stored key and puts it in the kernel keyring: the work of
// `hpcs-for-luks process` and of `hpcs-unlock` at boot. All unwraps are in
// flight at once; each key is added as soon as its answer arrives.
#ifndef HPCS_CORE_UNLOCK_H_
#define HPCS_CORE_UNLOCK_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/keyring.h"
#include "core/keystore.h"
#include "kp/kp_client.h"

namespace hpcs {

struct KeyOutcome {
  StoredKey key;
  bool already_loaded = false;  // skipped: it was in @u before we started
  int result = 0;               // 0: in the keyring
  std::string error;            // why not, naming the file
  bool unreachable = false;     // the KMS never answered usably for this key before the deadline
  // With UnlockRequest::update_wrapped: the unwrap returned a newer wrapping
  // (the root key was rotated) and the file now holds it; or why not.
  bool updated = false;
  std::string update_error;
};

// The stored keys a request is about (all under key_dir, or those named in
// UnlockRequest::only), as one read of the key directory found them.
struct KeyListing {
  int result = 0;     // < 0: the key directory could not be read
  std::string error;  // why not
  std::vector<StoredKey> keys;
};

struct UnlockRequest {
  std::string key_dir;
  std::string crk;                // root key that wrapped them
  std::vector<std::string> only;  // descriptions to load; empty: all
  bool skip_loaded = false;       // leave keys already in @u alone (real root after initramfs)
  bool update_wrapped = false;    // store the newer wrapping an unwrap returns (rotation.h)
  // How long that store waits for the key directory's lock (key_dir_lock.h)
  // while another writer holds it; then it stores nothing (update_error).
  std::chrono::milliseconds lock_wait{0};
  // Each key added expires this many seconds later, unless it has a linger
  // marker (<key_dir>/linger/TYPE/DESC, as for WipeKeys); 0: never.
  unsigned key_timeout_s = 0;
  // The keys as AllRequestedKeysLoaded listed them: UnlockKeys then does not
  // read key_dir again. Unset: UnlockKeys lists them.
  std::optional<KeyListing> listed = std::nullopt;
};

// The stored keys the request is about: one read of the key directory.
KeyListing ListRequestedKeys(const UnlockRequest& req);

// Returns 0 when the key directory could be read (outcomes say how each key
// fared), negative when not even that worked.
int UnlockKeys(const UnlockRequest& req, KpClient& kp, Keyring& keyring,
               std::vector<KeyOutcome>* outcomes, std::string* err,
               const std::function<void(const KeyOutcome&)>& on_key = {});

// True when every key the request is about has a file and is in the keyring
// already (*count of them): with skip_loaded there is nothing to unwrap, and
// so no reason to unseal the API key or to call the KMS. False also when the
// key directory cannot be read or holds no key (UnlockKeys says why). Reads
// the key directory once, into req->listed, for the UnlockKeys that follows.
bool AllRequestedKeysLoaded(UnlockRequest* req, Keyring& keyring, int* count);

// How a run of UnlockKeys went, counted once for both binaries.
struct UnlockSummary {
  int loaded = 0;
  int failed = 0;                    // outcomes that failed, plus `missing`
  int unreachable = 0;               // failed because the KMS never answered
  int already_loaded = 0;            // skipped (skip_loaded)
  std::vector<std::string> missing;  // asked for (req.only) with no file
};
UnlockSummary SummarizeUnlock(const UnlockRequest& req, const std::vector<KeyOutcome>& outcomes);

// Revokes the keys `process` adds, except the lingering ones. Returns the
// number of failures; *revoked and *kept count the others.
int WipeKeys(const std::string& key_dir, Keyring& keyring, int* revoked, int* kept,
             std::vector<std::string>* errors);

}  // namespace hpcs

#endif  // HPCS_CORE_UNLOCK_H_
