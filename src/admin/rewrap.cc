#include "admin/rewrap.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fileio.h"
#include "base/strutil.h"
#include "kp/kp_keys.h"

namespace hpcs {

namespace {

// The key directory's keys with their ciphertexts; unreadable ones get an
// error outcome and an empty ciphertext.
int LoadKeys(const std::string& key_dir, std::vector<RewrapOutcome>* outcomes,
             std::vector<std::string>* ciphertexts, std::string* err) {
  std::vector<StoredKey> stored;
  if (int r = ListStoredKeys(key_dir, &stored, nullptr, err); r < 0) return r;
  outcomes->assign(stored.size(), {});
  ciphertexts->assign(stored.size(), "");
  for (size_t i = 0; i < stored.size(); ++i) {
    RewrapOutcome& o = (*outcomes)[i];
    o.key = stored[i];
    if (int r = ReadWrappedKey(o.key.path, &(*ciphertexts)[i], &o.error); r < 0) o.result = r;
  }
  return 0;
}

std::vector<KpCall*> Batch(std::vector<KpCall>& calls) {
  std::vector<KpCall*> b;
  for (auto& c : calls) {
    if (!c.path.empty()) b.push_back(&c);
  }
  return b;
}

}  // namespace

int RewrapKeys(KpClient& kp, const std::string& key_dir, const std::string& crk,
               std::vector<RewrapOutcome>* outcomes, std::string* err) {
  std::vector<RewrapOutcome> out;
  std::vector<std::string> old_ct;
  if (int r = LoadKeys(key_dir, &out, &old_ct, err); r < 0) return r;
  std::vector<KpCall> calls(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result == 0) calls[i] = MakeRewrapCall(crk, old_ct[i]);
  }
  std::vector<std::string> new_ct(out.size());
  kp.Run(Batch(calls), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    RewrapOutcome& o = out[i];
    RewrapResult rr;
    std::string why;
    if (int r = ParseRewrap(call, &rr, &why); r < 0) {
      o.result = r;
      o.error = "cannot rewrap '" + o.key.path + "': " + why;
      return;
    }
    o.old_version = rr.key_version;
    o.new_version = rr.rewrapped_key_version;
    if (!rr.key_version.empty() && rr.key_version == rr.rewrapped_key_version) return;
    new_ct[i] = std::move(rr.ciphertext);
  });
  // Before a file is replaced, the KMS must open its new ciphertext: a
  // second rewrap proves it without the plaintext leaving the KMS.
  std::vector<KpCall> checks(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!new_ct[i].empty()) checks[i] = MakeRewrapCall(crk, new_ct[i]);
  }
  kp.Run(Batch(checks), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - checks.data());
    RewrapOutcome& o = out[i];
    RewrapResult rr;
    std::string why;
    if (ParseRewrap(call, &rr, &why) < 0) {
      o.result = -EPROTO;
      o.error = "the rewrapped '" + o.key.path + "' does not open (left as it was): " + why;
    } else if (!o.new_version.empty() && rr.key_version != o.new_version) {
      o.result = -EPROTO;
      o.error = "the rewrapped '" + o.key.path + "' is of key version " + rr.key_version +
                ", not " + o.new_version + " (left as it was)";
    }
  });
  for (size_t i = 0; i < out.size(); ++i) {
    RewrapOutcome& o = out[i];
    if (o.result < 0 || new_ct[i].empty()) continue;
    std::string now, why;
    if (ReadWrappedKey(o.key.path, &now, &why) < 0 || now != old_ct[i]) {
      o.result = -EAGAIN;
      o.error = "'" + o.key.path + "' changed while it was being rewrapped; left as it is";
    } else if (int w = WriteWrappedKey(o.key.path, new_ct[i], &why); w < 0) {
      o.result = w;
      o.error = why;
    } else {
      o.changed = true;
    }
  }
  *outcomes = std::move(out);
  return 0;
}

StagedFiles::~StagedFiles() { Discard(); }

int StagedFiles::Stage(const std::string& path, std::string_view data, mode_t mode,
                       std::string* err) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  File f{dir + "/." + base + ".staged", path};
  if (int r = WriteFileAtomic(f.tmp, data, mode, err); r < 0) return r;
  files_.push_back(std::move(f));
  return 0;
}

int StagedFiles::Commit(std::string* err) {
  int result = 0;
  std::vector<std::string> failed;
  for (const auto& f : files_) {
    if (rename(f.tmp.c_str(), f.path.c_str()) != 0) {
      result = -errno;
      failed.push_back("'" + f.path + "': " + strerror(errno));
      unlink(f.tmp.c_str());
    }
  }
  files_.clear();
  if (result < 0 && err) *err = "cannot put in place " + Join(failed, "; ");
  return result;
}

void StagedFiles::Discard() {
  for (const auto& f : files_) unlink(f.tmp.c_str());
  files_.clear();
}

int MoveKeys(KpClient& from, const std::string& from_crk, KpClient& to, const std::string& to_crk,
             const std::string& key_dir, StagedFiles* staged, std::vector<RewrapOutcome>* outcomes,
             std::string* err) {
  std::vector<RewrapOutcome> out;
  std::vector<std::string> old_ct;
  if (int r = LoadKeys(key_dir, &out, &old_ct, err); r < 0) return r;
  std::vector<Secret> plain(out.size());
  std::vector<KpCall> calls(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result == 0) calls[i] = KpClient::MakeUnwrapCall(from_crk, old_ct[i]);
  }
  from.Run(Batch(calls), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    UnwrapDetails d;
    std::string why;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      out[i].result = r;
      out[i].error =
          "cannot unwrap '" + out[i].key.path + "' with root key '" + from_crk + "': " + why;
    } else {
      out[i].old_version = d.key_version;
      plain[i] = std::move(d.plaintext);
    }
    call.response.Clear();
  });
  std::vector<std::string> new_ct(out.size());
  std::vector<KpCall> checks(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result < 0) continue;
    std::string why;
    if (int r = to.Wrap(to_crk, plain[i], &new_ct[i], &why); r < 0) {
      out[i].result = r;
      out[i].error = "cannot wrap '" + out[i].key.path + "' with root key '" + to_crk + "': " + why;
      continue;
    }
    checks[i] = KpClient::MakeUnwrapCall(to_crk, new_ct[i]);
  }
  to.Run(Batch(checks), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - checks.data());
    UnwrapDetails d;
    std::string why;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      out[i].result = r;
      out[i].error = "the new wrapping of '" + out[i].key.path + "' does not unwrap: " + why;
    } else if (!d.plaintext.Equals(plain[i])) {
      out[i].result = -EBADMSG;
      out[i].error = "the new wrapping of '" + out[i].key.path + "' unwraps to other bytes";
    } else {
      out[i].new_version = d.key_version;
    }
    call.response.Clear();
  });
  for (auto& p : plain) p.Clear();
  bool all = true;
  for (const auto& o : out) all = all && o.result == 0;
  if (all) {
    for (size_t i = 0; i < out.size(); ++i) {
      std::string text = new_ct[i] + "\n";
      if (int r = staged->Stage(out[i].key.path, text, 0600, &out[i].error); r < 0) {
        out[i].result = r;
        all = false;
      } else {
        out[i].changed = true;
      }
    }
    if (!all) {
      staged->Discard();
      for (auto& o : out) o.changed = false;
    }
  }
  *outcomes = std::move(out);
  return all ? 0 : -1;
}

}  // namespace hpcs
