// report: the API key (unsealed by the TPM when it is sealed), an IAM
// token, and the root key's state and newest key version.
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "admin/report_checks.h"
#include "tpm/tpm.h"

namespace hpcs {

namespace {

KmsOptions ReportKmsOptions(const ReportContext& ctx) {
  KmsOptions o;
  o.deadline = ctx.options.deadline;
  o.make_tpm = ctx.options.make_tpm;
  return o;
}

// What to do about a root key in a given state.
std::string StateRemedy(int state, const std::string& id) {
  switch (state) {
    case kKeySuspended:
      return "enable it: in the console, or POST /api/v2/keys/" + id +
             "/actions/enable (needs the Manager role)";
    case kKeyDeactivated:
      return "move the keys to another root key: hpcs-for-luks rewrap --to-crk NEW_UUID";
    case kKeyDestroyed:
      return "restore the key within 30 days of its deletion, or unlock with a passphrase and "
             "re-enrol under another root key";
    default:
      return "use an active root key (default_crk_uuid)";
  }
}

}  // namespace

void CheckTpm(ReportContext& ctx) {
  const Config& c = ctx.config;
  if (!c.api_key_from_tpm) return;
  Report& r = ctx.report;
  std::string blob, read_err, err;
  struct stat st;
  int read = ReadTpmBlob(c, &blob, &st, &read_err);
  if (read == 0) ctx.tpm_blob = blob;  // the initramfs check compares it
  if (CheckTpmSupport(&err) < 0) {
    r.Add("tpm", c.tpm_blob, Level::kFail, "api_key = TPM, but " + err);
    return;
  }
  TpmFacts facts;
  if (read == -ENOENT) {
    r.tpm = facts;
    return;  // CheckConfig named the missing blob
  }
  if (read < 0) {
    r.tpm = facts;
    r.Add("tpm", c.tpm_blob, Level::kFail, "cannot read the sealed API key: " + read_err);
    return;
  }
  auto kind = BlobKind(blob);
  facts.kind = kind ? TpmKindName(*kind) : "unknown";
  if (UnsealTpmBlob(c, blob, st, ReportKmsOptions(ctx), &ctx.api_key, &err) < 0) {
    r.tpm = facts;
    r.Add("tpm", c.tpm_blob, Level::kFail, "the API key does not unseal now: " + err,
          "if the change was intended, reseal in the new state (hpcs-for-luks seal-api-key), "
          "then rebuild the initramfs; otherwise find out what changed the boot chain");
    return;
  }
  facts.unseals = true;
  r.tpm = facts;
  r.Add("tpm", c.tpm_blob, Level::kOk,
        "the API key unseals from the " + facts.kind + " with the PCR values of now");
  for (const std::string& lack : BlobShortcomings(blob)) {
    r.Add("tpm", c.tpm_blob, Level::kInfo, lack,
          "reseal (hpcs-for-luks seal-api-key), then rebuild the initramfs");
  }
}

void CheckKms(ReportContext& ctx) {
  const Config& c = ctx.config;
  Report& r = ctx.report;
  if (CheckKmsSettings(c, nullptr) < 0) return;  // CheckConfig named what is missing
  if (c.api_key_from_tpm && !(r.tpm && r.tpm->unseals)) {
    r.Add("kms", c.endpoint_url, Level::kFail, "not checked: no API key (see the TPM finding)");
    return;
  }
  std::string err;
  int opened = c.api_key_from_tpm
                   ? OpenKms(c, ReportKmsOptions(ctx), std::move(ctx.api_key), &ctx.kms, &err)
                   : OpenKms(c, ReportKmsOptions(ctx), &ctx.kms, &err);
  if (opened < 0) {
    r.Add("kms", c.endpoint_url, Level::kFail, err);
    return;
  }
  if (c.default_crk_uuid.empty()) return;
  const std::string& crk = c.default_crk_uuid;
  KpCall call = MakeKeyMetadataCall(crk);
  RunKpCall(*ctx.kms.client, &call, nullptr);
  if (FailedForToken(call)) {
    r.Add("kms", c.iam_endpoint_url, Level::kFail, call.error,
          "check [KP] api_key (or the sealed one) and iam_endpoint_url in '" + c.path + "'");
    ctx.kms.client.reset();
    return;
  }
  if (call.status == 0) {
    r.Add("kms", c.endpoint_url, Level::kFail, call.error,
          "check the network, endpoint_url and any proxy");
    ctx.kms.client.reset();
    return;
  }
  r.Add("kms", c.iam_endpoint_url, Level::kOk, "an IAM token was obtained");
  KeyMetadata m;
  if (ParseKeyMetadata(call, &m, &err) < 0) {
    std::string remedy;
    if (call.status == 404) remedy = "check default_crk_uuid and service_instance_id";
    if (call.status == 401 || call.status == 403) {
      remedy = "give the API key's service ID access to the instance and the key";
    }
    r.Add("root-key", crk, Level::kFail, "cannot read the root key: " + err, remedy);
    return;
  }
  RootKeyFacts f;
  f.id = m.id.empty() ? crk : m.id;
  f.state = m.state;
  f.state_name = KeyStateName(m.state);
  f.key_version = m.key_version;
  f.key_version_created = m.key_version_created;
  r.root_key = f;
  ctx.root_key = m;
  if (m.extractable) {
    r.Add("root-key", crk, Level::kFail, "'" + m.name + "' is a standard key, not a root key",
          "set default_crk_uuid to a root key");
  } else if (m.state == kKeyActive) {
    r.Add("root-key", crk, Level::kOk,
          "'" + m.name + "' is active; newest key version " + m.key_version +
              (m.key_version_created.empty() ? "" : " (" + m.key_version_created + ")"));
  } else {
    // A deactivated key still unwraps: at risk, not yet failing.
    Level level = m.state == kKeyDeactivated ? Level::kWarn : Level::kFail;
    std::string what = m.state == kKeyDeactivated
                           ? ": keys still unwrap, but nothing new can be wrapped with it"
                           : ": unwraps will fail, so no volume unlocks at boot";
    r.Add("root-key", crk, level, "'" + m.name + "' is " + KeyStateName(m.state) + what,
          StateRemedy(m.state, crk));
  }
}

}  // namespace hpcs
