#include "core/unlock.h"

#include <algorithm>
#include <cerrno>
#include <map>

#include "base/error.h"
#include "core/rotation.h"
#include "kp/kp_keys.h"

namespace hpcs {

namespace {

// Settles a key that needs no KMS call: a description the kernel refuses, a
// key already in the keyring (skip_loaded), a file that holds no wrapped key.
// False when the key is to be unwrapped; *ciphertext then holds it.
bool SettleWithoutKms(const UnlockRequest& req, Keyring& keyring, KeyOutcome* o,
                      std::string* ciphertext) {
  std::string why;
  if (!ValidDescription(o->key.type, o->key.desc, &why)) {
    o->result = -EINVAL;
    o->error = "'" + o->key.path + "': " + why;
  } else if (req.skip_loaded && keyring.Has(o->key.type, o->key.desc)) {
    o->already_loaded = true;
  } else if (int r = ReadWrappedKey(o->key.path, ciphertext, &why); r < 0) {
    o->result = r;
    o->error = why;
  } else {
    return false;
  }
  return true;
}

// How long a key stays in the keyring: a lingering key for good.
unsigned KeyTimeout(const UnlockRequest& req, const StoredKey& k) {
  return HasLingerMarker(req.key_dir, k.type, k.desc) ? 0 : req.key_timeout_s;
}

// Puts the plaintext of a finished unwrap call into the keyring; *d keeps
// the rest of the answer (a newer wrapping, after a rotation).
void Land(const UnlockRequest& req, KpCall& call, Keyring& keyring, KeyOutcome* o,
          UnwrapDetails* d) {
  const Secret& plain = d->plaintext;
  std::string why;
  o->unreachable = call.result < 0 && call.unreachable;
  if (int r = ParseUnwrapDetails(call, d, &why); r < 0) {
    o->result = r;
    o->error = "cannot unwrap '" + o->key.path + "': " + why;
  } else if (plain.empty()) {
    o->result = -EINVAL;
    o->error = "cannot load '" + o->key.path + "': the unwrapped key is empty";
  } else if (r = keyring.Add(o->key.type, o->key.desc, plain.bytes(), KeyTimeout(req, o->key),
                             nullptr, &why);
             r < 0) {
    o->result = r;
    o->error = "cannot load '" + o->key.path + "': " + why;
  }
  call.response.Clear();
  call.body.Clear();
}

}  // namespace

KeyListing ListRequestedKeys(const UnlockRequest& req) {
  KeyListing listed;
  if (int r = ListStoredKeys(req.key_dir, &listed.keys, nullptr, &listed.error); r < 0) {
    listed.result = r;
    return listed;
  }
  if (!req.only.empty()) {
    std::erase_if(listed.keys, [&](const StoredKey& k) {
      return std::find(req.only.begin(), req.only.end(), k.desc) == req.only.end();
    });
  }
  return listed;
}

int UnlockKeys(const UnlockRequest& req, KpClient& kp, Keyring& keyring,
               std::vector<KeyOutcome>* outcomes, std::string* err,
               const std::function<void(const KeyOutcome&)>& on_key) {
  const KeyListing listed = req.listed ? *req.listed : ListRequestedKeys(req);
  if (listed.result < 0) return Fail(err, listed.result, listed.error);
  const std::vector<StoredKey>& stored = listed.keys;
  std::vector<KeyOutcome> out(stored.size());
  std::vector<KpCall> calls(stored.size());
  std::map<const KpCall*, KeyOutcome*> owner;
  std::vector<std::string> ciphertexts(stored.size());
  std::vector<RotatedKey> rotated;
  std::vector<KpCall*> batch;
  for (size_t i = 0; i < stored.size(); ++i) {
    out[i].key = stored[i];
    std::string ct;
    if (SettleWithoutKms(req, keyring, &out[i], &ct)) {
      if (on_key) on_key(out[i]);
      continue;
    }
    calls[i] = KpClient::MakeUnwrapCall(req.crk, ct);
    ciphertexts[i] = std::move(ct);
    owner[&calls[i]] = &out[i];
    batch.push_back(&calls[i]);
  }
  // Each key goes into the keyring as soon as its answer arrives.
  kp.Run(batch, [&](KpCall& call) {
    KeyOutcome* o = owner.at(&call);
    UnwrapDetails d;
    Land(req, call, keyring, o, &d);
    if (o->result == 0 && req.update_wrapped) {
      NoteRotatedKey(o->key.path, ciphertexts[static_cast<size_t>(o - out.data())], &d, &rotated,
                     &o->update_error);
    }
    if (on_key) on_key(*o);
  });
  if (!rotated.empty()) {
    StoreRotatedKeys(kp, req.crk, req.key_dir, req.lock_wait, &rotated);
    for (const auto& k : rotated) {
      for (auto& o : out) {
        if (o.key.path != k.path) continue;
        o.updated = k.result == 0;
        o.update_error = k.error;
      }
    }
  }
  *outcomes = std::move(out);
  return 0;
}

bool AllRequestedKeysLoaded(UnlockRequest* req, Keyring& keyring, int* count) {
  req->listed = ListRequestedKeys(*req);
  const std::vector<StoredKey>& stored = req->listed->keys;
  if (req->listed->result < 0 || stored.empty()) return false;
  for (const std::string& want : req->only) {
    auto has = [&](const StoredKey& k) { return k.desc == want; };
    if (std::none_of(stored.begin(), stored.end(), has)) return false;
  }
  for (const StoredKey& k : stored) {
    if (!keyring.Has(k.type, k.desc)) return false;
  }
  *count = static_cast<int>(stored.size());
  return true;
}

UnlockSummary SummarizeUnlock(const UnlockRequest& req, const std::vector<KeyOutcome>& outcomes) {
  UnlockSummary s;
  for (const auto& o : outcomes) {
    if (o.already_loaded) {
      ++s.already_loaded;
    } else if (o.result == 0) {
      ++s.loaded;
    } else {
      ++s.failed;
      s.unreachable += o.unreachable;
    }
  }
  for (const auto& desc : req.only) {
    if (std::none_of(outcomes.begin(), outcomes.end(),
                     [&](const KeyOutcome& o) { return o.key.desc == desc; })) {
      s.missing.push_back(desc);
      ++s.failed;
    }
  }
  return s;
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
