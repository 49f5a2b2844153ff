#include "core/token_open.h"

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/strutil.h"

namespace hpcs {
namespace {

int CheckPassphrase(const Secret& p, std::string_view what, std::string* err) {
  std::string_view v = p.view();
  if (v.empty() || v.size() > kMaxTokenPassphrase) {
    return Fail(err, -EBADMSG,
                std::string(what) + " is " + std::to_string(v.size()) + " bytes long, not 1 to " +
                    std::to_string(kMaxTokenPassphrase));
  }
  if (v.find('\0') != std::string_view::npos || v.find('\n') != std::string_view::npos) {
    return Fail(err, -EBADMSG, std::string(what) + " holds a NUL or a newline");
  }
  return 0;
}

}  // namespace

int OpenHpcsToken(KpClient& kp, const Config& c, const HpcsToken& t, std::string_view luks_uuid,
                  Secret* passphrase, std::string* key_version, std::string* err) {
  if (t.instance != c.service_instance_id) {
    return Fail(err, -EXDEV,
                "the token was made with Key Protect instance '" + Printable(t.instance, 80) +
                    "', and " + c.path + " names instance '" +
                    Printable(c.service_instance_id, 80) + "'");
  }
  std::vector<std::string> aad;
  if (int r = HpcsTokenAad(luks_uuid, &aad, err); r < 0) return r;
  KpCall call = KpClient::MakeUnwrapCall(t.crk, t.ciphertext, aad);
  KpCall* calls[] = {&call};
  kp.Run(calls);
  // Only answers worth retrying until the deadline (a 503, a 429): the KMS
  // was not reached in time, as much as when it never answered.
  if (call.result == -EPROTO && call.unreachable) call.result = -ETIMEDOUT;
  Secret pt;
  if (int r = KpClient::ParseUnwrap(call, &pt, err, key_version); r < 0) return r;
  if (int r = CheckPassphrase(pt, "the unwrapped passphrase", err); r < 0) return r;
  *passphrase = std::move(pt);
  return 0;
}

int WrapHpcsToken(KpClient& kp, const Config& c, std::string_view crk, std::string_view luks_uuid,
                  const Secret& passphrase, std::vector<int> keyslots, std::string name,
                  HpcsToken* out, std::string* err) {
  if (int r = CheckPassphrase(passphrase, "the passphrase", err); r < 0) return r;
  std::vector<std::string> aad;
  if (int r = HpcsTokenAad(luks_uuid, &aad, err); r < 0) return r;
  HpcsToken t;
  t.keyslots = std::move(keyslots);
  t.kms = c.endpoint_url;
  t.instance = c.service_instance_id;
  t.crk = std::string(crk);
  t.name = std::move(name);
  if (int r = kp.Wrap(crk, passphrase, aad, &t.ciphertext, &t.key_version, err); r < 0) return r;
  // What a reader will refuse is refused now, before anyone stores it.
  HpcsToken parsed;
  if (int r = ParseHpcsToken(FormatHpcsToken(t), &parsed, err); r < 0) return r;
  Secret back;
  std::string unwrap_err;
  if (int r = OpenHpcsToken(kp, c, parsed, luks_uuid, &back, nullptr, &unwrap_err); r < 0) {
    return Fail(err, r, "the new wrapping did not unwrap: " + unwrap_err);
  }
  if (back.size() != passphrase.size() ||
      memcmp(back.data(), passphrase.data(), passphrase.size()) != 0) {
    return Fail(err, -EIO,
                "the KMS unwrapped the new wrapping to other bytes than were wrapped (root key '" +
                    std::string(crk) + "')");
  }
  *out = std::move(parsed);
  return 0;
}

}  // namespace hpcs
