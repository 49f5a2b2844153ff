#include "rotation.h"

#include <unistd.h>

#include <cerrno>

#include "keystore.h"
#include "kp_keys.h"
#include "strutil.h"

namespace hpcs {

void StoreRotatedKeys(KpClient& kp, std::string_view crk, std::vector<RotatedKey>* keys) {
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
  for (auto& k : *keys) {
    k.plaintext.Clear();
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
