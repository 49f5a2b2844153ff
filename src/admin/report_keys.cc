// report: every wrapped key unwraps (the plaintext is kept, locked and
// wiped, only to try the key slots), and which key version wrapped it.
#include "admin/report_checks.h"

namespace hpcs {

void CheckKeys(ReportContext& ctx) {
  Report& r = ctx.report;
  if (ctx.stored.empty()) return;
  if (!ctx.kms.client || ctx.config.default_crk_uuid.empty()) {
    // The TPM locked for this boot (a blob that unseals at the next one) is
    // no fault of the keys: a note, as for the KMS.
    bool locked = r.tpm && r.tpm->locked && r.tpm->unseals_at_boot != false && !r.tpm->unseals;
    for (const auto& k : ctx.stored) {
      r.Add("key", KeyLabel(k), locked ? Level::kInfo : Level::kFail,
            locked ? "not checked: the TPM is locked for this boot (see above)"
                   : "not checked: the KMS cannot be used (see above)");
    }
    return;
  }
  const std::string& crk = ctx.config.default_crk_uuid;
  std::vector<KpCall> calls(ctx.stored.size());
  std::vector<KpCall*> batch;
  for (size_t i = 0; i < ctx.stored.size(); ++i) {
    std::string ct, err;
    if (ReadWrappedKey(ctx.stored[i].path, &ct, &err) < 0) {
      r.keys[ctx.key_index[KeyLabel(ctx.stored[i])]].unwraps = false;
      r.Add("key", KeyLabel(ctx.stored[i]), Level::kFail, err,
            "restore the file from a backup, or re-enrol the volume");
      continue;
    }
    calls[i] = KpClient::MakeUnwrapCall(crk, ct);
    batch.push_back(&calls[i]);
  }
  ctx.kms.client->Run(batch, [&](KpCall& call) {
    const StoredKey& k = ctx.stored[static_cast<size_t>(&call - calls.data())];
    KeyFacts& f = r.keys[ctx.key_index[KeyLabel(k)]];
    UnwrapDetails d;
    std::string err;
    if (ParseUnwrapDetails(call, &d, &err) < 0) {
      f.unwraps = false;
      std::string remedy = call.status == 422
                               ? "it was wrapped by another root key or is damaged: re-enrol "
                                 "the volume, or move it with rewrap --to-crk from its root key"
                               : "see the root key and KMS findings";
      r.Add("key", KeyLabel(k), Level::kFail, "does not unwrap: " + err, remedy);
    } else if (d.plaintext.empty()) {
      f.unwraps = false;
      r.Add("key", KeyLabel(k), Level::kFail, "unwraps to nothing (an empty key)",
            "re-enrol the volume");
    } else {
      f.unwraps = true;
      f.key_version = d.key_version;
      if (ctx.root_key && !d.key_version.empty()) {
        f.current = d.key_version == ctx.root_key->key_version;
      }
      if (f.current == false) {
        r.Add("key", KeyLabel(k), Level::kInfo,
              "unwraps; wrapped with an older key version (" + d.key_version +
                  "): it still works, rewrap moves it to the newest",
              "hpcs-for-luks rewrap (process and the boot-time unlock also do it on their own)");
      } else {
        r.Add("key", KeyLabel(k), Level::kOk,
              "unwraps" + std::string(f.current ? " (newest key version)" : ""));
      }
      ctx.plaintext[KeyLabel(k)] = std::move(d.plaintext);
    }
    call.response.Clear();
    call.body.Clear();
  });
}

}  // namespace hpcs
