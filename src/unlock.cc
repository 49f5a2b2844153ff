#include "unlock.h"

#include <algorithm>
#include <cerrno>

#include "kp_keys.h"
#include "rotation.h"

namespace hpcs {

int UnlockKeys(const UnlockRequest& req, KpClient& kp, Keyring& keyring,
               std::vector<KeyOutcome>* outcomes, std::string* err,
               const std::function<void(const KeyOutcome&)>& on_key) {
  std::vector<StoredKey> stored;
  std::vector<std::string> skipped;
  if (int r = ListStoredKeys(req.key_dir, &stored, &skipped, err); r < 0) return r;
  if (!req.only.empty()) {
    std::erase_if(stored, [&](const StoredKey& k) {
      return std::find(req.only.begin(), req.only.end(), k.desc) == req.only.end();
    });
  }
  std::vector<KeyOutcome> out(stored.size());
  std::vector<KpCall> calls(stored.size());
  std::vector<std::string> ciphertexts(stored.size());
  std::vector<RotatedKey> rotated;
  std::vector<size_t> rotated_index;
  std::vector<KpCall*> batch;
  auto report = [&](KeyOutcome& o) {
    if (on_key) on_key(o);
  };
  for (size_t i = 0; i < stored.size(); ++i) {
    KeyOutcome& o = out[i];
    o.key = stored[i];
    std::string why;
    std::string ct;
    if (!ValidDescription(o.key.type, o.key.desc, &why)) {
      o.result = -EINVAL;
      o.error = "'" + o.key.path + "': " + why;
      report(o);
      continue;
    }
    if (req.skip_loaded && keyring.Has(o.key.type, o.key.desc)) {
      o.already_loaded = true;
      report(o);
      continue;
    }
    if (int r = ReadWrappedKey(o.key.path, &ct, &why); r < 0) {
      o.result = r;
      o.error = why;
      report(o);
      continue;
    }
    calls[i] = KpClient::MakeUnwrapCall(req.crk, ct);
    ciphertexts[i] = std::move(ct);
    batch.push_back(&calls[i]);
  }
  kp.Run(batch, [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    KeyOutcome& o = out[i];
    UnwrapDetails d;
    Secret& plain = d.plaintext;
    std::string why;
    o.unreachable = call.result < 0 && call.unreachable;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      o.result = r;
      o.error = "cannot unwrap '" + o.key.path + "': " + why;
    } else if (plain.empty()) {
      o.result = -EINVAL;
      o.error = "cannot load '" + o.key.path + "': the unwrapped key is empty";
    } else if (int r2 = keyring.Add(o.key.type, o.key.desc, plain.bytes(), nullptr, &why); r2 < 0) {
      o.result = r2;
      o.error = "cannot load '" + o.key.path + "': " + why;
    } else if (req.update_wrapped && !d.rewrapped_ciphertext.empty()) {
      if (PlausibleCiphertext(d.rewrapped_ciphertext)) {
        RotatedKey k;
        k.path = o.key.path;
        k.old_ciphertext = ciphertexts[i];
        k.new_ciphertext = d.rewrapped_ciphertext;
        k.new_key_version = d.rewrapped_key_version;
        k.plaintext = std::move(plain);
        rotated.push_back(std::move(k));
        rotated_index.push_back(i);
      } else {
        o.update_error = "the newer wrapping in the answer is not a ciphertext";
      }
    }
    call.response.Clear();
    call.body.Clear();
    report(o);
  });
  if (!rotated.empty()) {
    StoreRotatedKeys(kp, req.crk, &rotated);
    for (size_t j = 0; j < rotated.size(); ++j) {
      KeyOutcome& o = out[rotated_index[j]];
      o.updated = rotated[j].result == 0;
      o.update_error = rotated[j].error;
    }
  }
  *outcomes = std::move(out);
  return 0;
}

int WipeKeys(const std::string& key_dir, Keyring& keyring, int* revoked, int* kept,
             std::vector<std::string>* errors) {
  std::vector<StoredKey> stored;
  std::string err;
  *revoked = *kept = 0;
  if (ListStoredKeys(key_dir, &stored, nullptr, &err) < 0) {
    errors->push_back(err);
    return 1;
  }
  int failures = 0;
  for (const auto& k : stored) {
    if (HasLingerMarker(key_dir, k.type, k.desc)) {
      ++*kept;
      continue;
    }
    bool found = false;
    if (keyring.Revoke(k.type, k.desc, &found, &err) < 0) {
      errors->push_back(err);
      ++failures;
    } else if (found) {
      ++*revoked;
    }
  }
  return failures;
}

}  // namespace hpcs
