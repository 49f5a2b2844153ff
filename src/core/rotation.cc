#include "core/rotation.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/strutil.h"
#include "core/key_dir_lock.h"
#include "core/keystore.h"
#include "kp/kp_keys.h"

namespace hpcs {

void NoteRotatedKey(const std::string& path, const std::string& old_ciphertext,
                    UnwrapDetails* details, std::vector<RotatedKey>* keys, std::string* error) {
  if (details->rewrapped_ciphertext.empty()) return;
  if (!PlausibleCiphertext(details->rewrapped_ciphertext)) {
    *error = "the newer wrapping in the answer is not a ciphertext";
    return;
  }
  RotatedKey k;
  k.path = path;
  k.old_ciphertext = old_ciphertext;
  k.new_ciphertext = std::move(details->rewrapped_ciphertext);
  k.new_key_version = std::move(details->rewrapped_key_version);
  k.plaintext = std::move(details->plaintext);
  keys->push_back(std::move(k));
}

void StoreRotatedKeys(KpClient& kp, std::string_view crk, const std::string& key_dir,
                      std::chrono::milliseconds lock_wait, std::vector<RotatedKey>* keys) {
  std::vector<KpCall> calls;
  calls.reserve(keys->size());
  for (const auto& k : *keys) calls.push_back(KpClient::MakeUnwrapCall(crk, k.new_ciphertext));
  std::vector<KpCall*> batch;
  for (auto& c : calls) batch.push_back(&c);
  kp.Run(batch, [&](KpCall& call) {
    RotatedKey& k = (*keys)[static_cast<size_t>(&call - calls.data())];
    UnwrapDetails d;
    std::string why;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      k.result = r;
      k.error = "the newer wrapping does not unwrap: " + why;
    } else if (!d.plaintext.Equals(k.plaintext)) {
      k.result = -EBADMSG;
      k.error = "the newer wrapping unwraps to other bytes";
    }
    call.response.Clear();
    k.plaintext.Clear();
  });
  for (auto& k : *keys) k.plaintext.Clear();
  if (std::none_of(keys->begin(), keys->end(), [](const RotatedKey& k) { return k.result == 0; })) {
    return;
  }
  KeyDirLock lock;
  std::string busy;
  if (int r = LockKeyDir(key_dir, lock_wait, &lock, &busy); r < 0) {
    for (auto& k : *keys) {
      if (k.result < 0) continue;
      k.result = r;
      k.error = busy + "; the newer wrapping is stored by a later run";
    }
    return;
  }
  for (auto& k : *keys) {
    if (k.result < 0) continue;
    // Another writer (rewrap, an enrolment) may have replaced the file
    // since it was read: theirs wins.
    std::string now, why;
    if (int r = ReadWrappedKey(k.path, &now, &why); r < 0) {
      k.result = r;
      k.error = why;
    } else if (now != Trim(k.old_ciphertext)) {
      k.result = -EAGAIN;
      k.error = "'" + k.path + "' changed meanwhile; left as it is";
    } else if (int w = WriteWrappedKey(k.path, k.new_ciphertext, &why); w < 0) {
      k.result = w;
      k.error = why;
    }
  }
}

bool MayUpdateWrappedKeys(bool configured, const std::string& initrd_release) {
  return configured && access(initrd_release.c_str(), F_OK) != 0;
}

}  // namespace hpcs
