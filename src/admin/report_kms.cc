// report: the API key (unsealed by the TPM when it is sealed), an IAM
// token, and the root key's state and newest key version.
#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "admin/report_checks.h"
#include "base/strutil.h"
#include "core/tpm_lock.h"
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

struct LockState {
  bool locked = false;
  std::vector<uint8_t> before;  // the lock PCR's value at boot, before the lock
};

LockState ReadLockState(const ReportContext& ctx, TpmKind kind) {
  LockState s;
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(ctx.config.tpm2_tcti);
  to.deadline = ctx.options.deadline;
  std::shared_ptr<Tpm> tpm = ctx.options.make_tpm ? ctx.options.make_tpm(kind) : MakeTpm(kind, to);
  if (PreLockValue(*tpm, ResolveTpmLockRecordPath(), &s.before, &s.locked, nullptr) < 0) {
    s.locked = false;
  }
  return s;
}

// After this boot's lock the blob cannot unseal now; whether it unseals at
// the next boot is what matters: its PCR values against those of now, the
// lock PCR against its value before the lock.
void ReportLockedBlob(ReportContext& ctx, TpmKind kind,
                      const std::map<unsigned, std::vector<uint8_t>>& sealed, const LockState& lock,
                      TpmFacts facts) {
  Report& r = ctx.report;
  const Config& c = ctx.config;
  const std::string locked = "the TPM is locked for this boot (hpcs-unlock extended PCR " +
                             std::to_string(kLockPcr) +
                             " once it was done), so the API key "
                             "does not unseal now";
  if (sealed.empty()) {
    r.tpm = facts;
    r.Add("tpm", c.tpm_blob, Level::kInfo,
          locked + "; whether it unseals at the next boot cannot be told from a " + facts.kind +
              " blob",
          "to check the blob itself, run report before hpcs-unlock has run (rd.hpcs=0), or "
          "reboot and look for \"loaded N of N keys\" in the journal");
    return;
  }
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(c.tpm2_tcti);
  to.deadline = ctx.options.deadline;
  std::shared_ptr<Tpm> tpm = ctx.options.make_tpm ? ctx.options.make_tpm(kind) : MakeTpm(kind, to);
  std::vector<std::string> differ;
  for (const auto& [pcr, value] : sealed) {
    std::vector<uint8_t> now;
    if (pcr == kLockPcr) {
      now = lock.before;
    } else if (std::string e; tpm->ReadPcr(pcr, &now, &e) < 0) {
      r.tpm = facts;
      r.Add("tpm", c.tpm_blob, Level::kFail,
            locked + ", and reading PCR " + std::to_string(pcr) + " failed: " + e);
      return;
    }
    if (now != value) differ.push_back(std::to_string(pcr));
  }
  facts.unseals_at_boot = differ.empty();
  r.tpm = facts;
  if (differ.empty()) {
    r.Add("tpm", c.tpm_blob, Level::kOk,
          locked +
              "; it is sealed to the values the PCRs hold at boot before the lock, so it "
              "unseals at the next boot");
  } else {
    r.Add("tpm", c.tpm_blob, Level::kFail,
          locked + "; and PCR " + Join(differ, ", ") +
              " differs from the value sealed against: it does not unseal at the next boot",
          "if the change was intended, reseal in the new state (hpcs-for-luks seal-api-key "
          "seals PCR 15 to its value before the lock), then rebuild the initramfs");
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
  std::map<unsigned, std::vector<uint8_t>> sealed;
  if (BlobPcrValues(blob, &sealed, nullptr) == 0) facts.lock_pcr_sealed = sealed.count(kLockPcr);
  if (UnsealTpmBlob(c, blob, st, ReportKmsOptions(ctx), &ctx.api_key, &err) < 0) {
    LockState lock = kind ? ReadLockState(ctx, *kind) : LockState{};
    facts.locked = lock.locked;
    if (lock.locked && kind) return ReportLockedBlob(ctx, *kind, sealed, lock, facts);
    r.tpm = facts;
    r.Add("tpm", c.tpm_blob, Level::kFail, "the API key does not unseal now: " + err,
          "if the change was intended, reseal in the new state (hpcs-for-luks seal-api-key), "
          "then rebuild the initramfs; otherwise find out what changed the boot chain");
    return;
  }
  facts.unseals = true;
  facts.unseals_at_boot = true;
  // A TPM 1.2 blob keeps no PCR values: unsealing after this boot's lock
  // means it leaves the lock PCR out.
  if (kind == TpmKind::kTpm1) {
    facts.locked = ReadLockState(ctx, *kind).locked;
    if (facts.locked) facts.lock_pcr_sealed = false;
  }
  r.tpm = facts;
  r.Add("tpm", c.tpm_blob, Level::kOk,
        "the API key unseals from the " + facts.kind + " with the PCR values of now");
  if (facts.lock_pcr_sealed == false) {
    r.Add("tpm", c.tpm_blob, Level::kWarn,
          "the sealed API key leaves out PCR " + std::to_string(kLockPcr) +
              ": the TPM lock does not protect it, so any root process can unseal it for the "
              "whole boot (a blob sealed before hpcs-for-luks had the lock)",
          "reseal with the default PCRs (hpcs-for-luks seal-api-key), then rebuild the "
          "initramfs");
  }
  for (const std::string& lack : BlobShortcomings(blob)) {
    r.Add("tpm", c.tpm_blob, Level::kInfo, lack,
          "reseal (hpcs-for-luks seal-api-key), then rebuild the initramfs");
  }
}

void CheckKms(ReportContext& ctx) {
  const Config& c = ctx.config;
  Report& r = ctx.report;
  if (CheckKmsSettings(c, nullptr) < 0) return;  // CheckConfig named what is missing
  if (c.api_key_from_tpm && r.tpm && r.tpm->locked && !r.tpm->unseals &&
      r.tpm->unseals_at_boot != false) {
    r.Add("kms", c.endpoint_url, Level::kInfo,
          "not checked: the API key is sealed and the TPM is locked for this boot",
          "run report before hpcs-unlock has run in a boot (rd.hpcs=0), or check the boot's "
          "journal");
    return;
  }
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
  const bool vpc = c.auth == Auth::kVpc;
  if (FailedForToken(call)) {
    if (vpc) {
      r.Add("auth", c.metadata_endpoint_url, Level::kFail, call.error,
            "see the README's section for IBM Cloud VPC: the metadata service enabled, the "
            "trusted profile linked to this instance");
    } else {
      r.Add("kms", c.iam_endpoint_url, Level::kFail, call.error,
            "check [KP] api_key (or the sealed one) and iam_endpoint_url in '" + c.path + "'");
    }
    ctx.kms.client.reset();
    return;
  }
  if (call.status == 0) {
    r.Add("kms", c.endpoint_url, Level::kFail, call.error,
          "check the network, endpoint_url and any proxy");
    ctx.kms.client.reset();
    return;
  }
  if (vpc) {
    r.Add("auth", c.metadata_endpoint_url, Level::kOk,
          "the metadata service answered and gave an IAM token for " +
              DescribeProfile(c.trusted_profile) + " (auth = vpc: no API key)");
  } else {
    r.Add("kms", c.iam_endpoint_url, Level::kOk, "an IAM token was obtained");
  }
  KeyMetadata m;
  if (ParseKeyMetadata(call, &m, &err) < 0) {
    std::string remedy;
    if (call.status == 404) remedy = "check default_crk_uuid and service_instance_id";
    if ((call.status == 401 || call.status == 403) && vpc) {
      remedy = "give " + DescribeProfile(c.trusted_profile) +
               " a Key Protect role on the instance (Reader or more)";
    } else if (call.status == 401 || call.status == 403) {
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
