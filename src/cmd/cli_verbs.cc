#include "cmd/cli_verbs.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "base/fileio.h"
#include "base/log.h"
#include "base/random.h"
#include "base/strutil.h"
#include "cmd/blob_kind_command.h"
#include "cmd/command.h"
#include "cmd/key_files_command.h"
#include "cmd/luks_command.h"
#include "cmd/report_command.h"
#include "cmd/rewrap_command.h"
#include "cmd/token_command.h"
#include "core/key_dir_lock.h"
#include "core/keyring.h"
#include "core/rotation.h"
#include "core/tpm_lock.h"
#include "core/unlock.h"
#include "tpm/tpm.h"

namespace hpcs {
namespace {

constexpr size_t kMaxStdin = 64 * 1024;
constexpr size_t kGenBytes = 32;

bool ReadStdin(const char* what, Secret* out) {
  std::string err;
  if (ReadAllFd(STDIN_FILENO, kMaxStdin, out, &err) < 0) {
    LogError(std::string("Failed to read ") + what + " from standard input: " + err);
    return false;
  }
  if (out->empty()) {
    LogError(std::string("No ") + what + " on standard input (it is empty)");
    return false;
  }
  return true;
}

bool WriteOut(std::string_view data) {
  std::string err;
  if (WriteAllFd(STDOUT_FILENO, data, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return false;
  }
  return true;
}

// ---- The verbs' options (kUuid is in cli_verbs.h) ----

constexpr Flag kCrk{"--crk"}, kStd{"--std"}, kGen{"--gen"};
constexpr Text kName{"--name"};
constexpr Flag kJson{"--json"};
constexpr Text kCrypttab{"--crypttab"};
constexpr TextList kInitramfs{"--initramfs"};
constexpr TextList kDevices{"--device"};
constexpr Text kToCrk{"--to-crk"}, kToConfig{"--to-config"};
constexpr Flag kTpm1{"--tpm1"}, kTpm2{"--tpm2"};
constexpr TextList kPcr{"--pcr"};
constexpr Text kOutput{"--output"};
constexpr TextList kGet{"--get"};
constexpr Flag kPrint{"--print"}, kWithApiKey{"--with-api-key"};
constexpr Text kKeyDir{"--key-dir"}, kCaFile{"--ca-file"}, kTpmBlob{"--tpm-blob"};

// ---- Verbs ----

int CmdList(Context& ctx) {
  std::vector<KeyInfo> keys;
  std::string err;
  if (ctx.kms.client->List(&keys, &err) < 0) return CommandFailed("Failed to list keys: " + err);
  std::string out;
  for (const auto& k : keys) out += k.id + "\t" + k.name + "\n";
  return WriteOut(out) ? kExitOk : kExitFail;
}

std::string CheckCreate(const Args& a) {
  if (a.Get(kCrk) == a.Get(kStd)) return "give exactly one of --crk or --std";
  if (size_t n = a.Get(kName).size(); n < 2 || n > 90) {
    return "--name NAME (2 to 90 characters) is required";
  }
  return "";
}

int CmdCreate(Context& ctx) {
  bool crk = ctx.args.Get(kCrk), gen = ctx.args.Get(kGen);
  std::string name = ctx.args.Get(kName);
  Secret material;
  if (!gen && !ReadStdin("key material", &material)) return kExitFail;
  std::string id, err;
  if (ctx.kms.client->Create(name, crk, gen ? nullptr : &material, &id, &err) < 0) {
    return CommandFailed("Failed to create key '" + name + "': " + err);
  }
  LogInfo(std::string("Created ") + (crk ? "root" : "standard") + " key '" + name + "'");
  return WriteOut(id + "\n") ? kExitOk : kExitFail;
}

std::string CheckUuid(const Args& a) {
  return a.Get(kUuid).empty() ? "--uuid UUID is required" : "";
}

int CmdGet(Context& ctx) {
  std::string id = ctx.args.Get(kUuid), json, err;
  if (ctx.kms.client->Get(id, &json, &err) < 0) {
    return CommandFailed("Failed to get key '" + id + "': " + err);
  }
  return WriteOut(json + "\n") ? kExitOk : kExitFail;
}

int CmdDelete(Context& ctx) {
  std::string id = ctx.args.Get(kUuid), err;
  if (ctx.kms.client->Delete(id, &err) < 0) {
    return CommandFailed("Failed to delete key '" + id + "': " + err);
  }
  LogInfo("Deleted key '" + id + "'");
  return kExitOk;
}

int CmdWrap(Context& ctx) {
  const std::string& crk = ctx.crk;
  Secret plain;
  std::string ct, err;
  if (ctx.args.Get(kGen)) {
    if (RandomSecret(kGenBytes, &plain, &err) < 0) {
      return CommandFailed("Failed to generate key material: " + err);
    }
  } else if (!ReadStdin("plaintext", &plain)) {
    return kExitFail;
  }
  if (ctx.kms.client->Wrap(crk, plain, &ct, &err) < 0) {
    return CommandFailed("Failed to wrap with root key '" + crk + "': " + err);
  }
  // Prove the ciphertext opens to what we sent before anyone relies on it.
  Secret check;
  if (ctx.kms.client->Unwrap(crk, ct, &check, &err) < 0) {
    return CommandFailed("Failed to verify the wrapped key with root key '" + crk + "': " + err);
  }
  if (!check.Equals(plain)) {
    return CommandFailed("The wrapped key does not unwrap to the input (root key '" + crk +
                         "'); nothing was printed");
  }
  return WriteOut(ct + "\n") ? kExitOk : kExitFail;
}

int CmdUnwrap(Context& ctx) {
  Secret in;
  if (!ReadStdin("ciphertext", &in)) return kExitFail;
  std::string_view ct = Trim(in.view());
  if (ct.empty()) return CommandFailed("No ciphertext on standard input (only white space)");
  Secret plain;
  std::string err;
  if (ctx.kms.client->Unwrap(ctx.crk, ct, &plain, &err) < 0) {
    return CommandFailed("Failed to unwrap with root key '" + ctx.crk + "': " + err);
  }
  return WriteOut(plain.view()) ? kExitOk : kExitFail;
}

int CmdProcess(Context& ctx) {
  auto keyring = MakeKernelKeyring();
  UnlockRequest req{ctx.config.key_dir, ctx.crk, {}};
  req.update_wrapped = MayUpdateWrappedKeys(ctx.config.update_wrapped_keys, kInitrdRelease);
  req.lock_wait = kKeyDirLockWait;
  req.key_timeout_s = ctx.config.key_timeout_s;
  UnlockStatus s = UnlockAndReport(req, *ctx.kms.client, *keyring, LogLevel::kInfo);
  return s == UnlockStatus::kAllLoaded ? kExitOk : kExitFail;
}

int CmdReport(Context& ctx) {
  const Args& a = ctx.args;
  if (!LoadConfigAndWarn(a.Get(kConfigOption), &ctx.config)) return kExitUsage;
  ReportCommandOptions o;
  o.json = a.Get(kJson);
  o.crypttab = a.Get(kCrypttab);
  o.initramfs = a.Get(kInitramfs);
  o.devices = a.Get(kDevices);
  o.deadline = Clock::now() + std::chrono::seconds(a.Get(kTimeoutOption));
  return ReportCommand(ctx.config, o);
}

std::string CheckRewrap(const Args& a) {
  if (!a.Get(kToConfig).empty() && a.Get(kToCrk).empty()) {
    return "--to-config needs --to-crk";
  }
  if (!a.Get(kToCrk).empty() && a.Get(kToCrk) == a.Get(kUuid)) {
    return "--to-crk names the root key the keys are wrapped with now";
  }
  return "";
}

int CmdRewrap(Context& ctx) {
  const Args& a = ctx.args;
  // Before the check below: an interrupted move may have left the config
  // naming --to-crk already.
  if (int r = FinishInterruptedMove(ctx.config); r >= 0) return r;
  if (a.Get(kToCrk) == ctx.crk) {
    return Usage("rewrap: --to-crk names the root key the keys are wrapped with now");
  }
  RewrapCommandOptions o;
  o.to_crk = a.Get(kToCrk);
  o.to_config = a.Get(kToConfig);
  o.crypttab = a.Get(kCrypttab);
  o.devices = a.Get(kDevices);
  o.deadline = Clock::now() + std::chrono::seconds(a.Get(kTimeoutOption));
  return RewrapCommand(ctx.config, ctx.crk, *ctx.kms.client, o);
}

int CmdWipe(Context& ctx) {
  auto keyring = MakeKernelKeyring();
  int revoked = 0, kept = 0;
  std::vector<std::string> errors;
  int failed = WipeKeys(ctx.config.key_dir, *keyring, &revoked, &kept, &errors);
  for (const auto& e : errors) LogError(e);
  LogInfo("Revoked " + std::to_string(revoked) + " keys, kept " + std::to_string(kept) +
          " lingering");
  return failed ? kExitFail : kExitOk;
}

std::string CheckSealApiKey(const Args& a) {
  return a.Get(kTpm1) && a.Get(kTpm2) ? "--tpm1 or --tpm2, not both" : "";
}

// --pcr N or N=SHA256, repeated (default: the TPM kind's); the values to seal
// against go into *to. False with the reason in *why.
bool SealPcrs(const Args& a, TpmKind kind, std::vector<unsigned>* pcrs, TpmOptions* to,
              std::string* why) {
  if (a.Get(kPcr).empty()) {
    *pcrs = DefaultPcrs(kind);
    return true;
  }
  for (const auto& v : a.Get(kPcr)) {
    unsigned pcr = 0;
    std::optional<std::array<uint8_t, 32>> value;
    if (ParsePcrArgument(v, &pcr, &value, why) < 0) return false;
    if (value && kind == TpmKind::kTpm1) {
      *why = "--pcr N=VALUE is for a TPM 2.0 only";
      return false;
    }
    if (value) to->seal_pcr_values[pcr] = *value;
    pcrs->push_back(pcr);
  }
  return true;
}

// The lock PCR, when sealed to without a value given: its value before this
// boot's lock (core/tpm_lock.h), which is what it holds when hpcs-unlock
// unseals at the next boot. False with the reason in *why.
bool SealLockPcrValue(TpmKind kind, std::span<const unsigned> pcrs, TpmOptions* to,
                      std::string* why) {
  if (std::find(pcrs.begin(), pcrs.end(), kLockPcr) == pcrs.end()) return true;
  if (to->seal_pcr_values.count(kLockPcr)) return true;
  auto tpm = MakeTpm(kind, *to);
  std::vector<uint8_t> value;
  bool locked = false;
  if (PreLockValue(*tpm, ResolveTpmLockRecordPath(), &value, &locked, why) < 0) return false;
  if (locked) {
    LogInfo("seal-api-key: PCR " + std::to_string(kLockPcr) +
            " is locked for this boot; sealing to its value before the lock, which it holds "
            "when hpcs-unlock unseals");
  } else if (std::any_of(value.begin(), value.end(), [](uint8_t b) { return b != 0; })) {
    LogWarning("seal-api-key: PCR " + std::to_string(kLockPcr) +
               " is not zero, and no lock of this boot is on record ('" +
               ResolveTpmLockRecordPath() +
               "'): something else measures into it; if hpcs-unlock already ran in this boot, "
               "the blob will not unseal at the next one (reseal after a reboot)");
  }
  if (kind == TpmKind::kTpm1) {
    to->seal_pcr_values_tpm1[kLockPcr] = value;
  } else if (value.size() == 32) {
    std::array<uint8_t, 32> v;
    std::copy(value.begin(), value.end(), v.begin());
    to->seal_pcr_values[kLockPcr] = v;
  }
  return true;
}

int CmdSealApiKey(Context& ctx) {
  std::string err;
  if (CheckTpmSupport(&err) < 0) return CommandFailed("seal-api-key: " + err);
  const Args& a = ctx.args;
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(ctx.config.tpm2_tcti);
  TpmKind kind = a.Get(kTpm1) ? TpmKind::kTpm1 : a.Get(kTpm2) ? TpmKind::kTpm2 : DetectTpmKind(to);
  std::vector<unsigned> pcrs;
  std::string why;
  if (!SealPcrs(a, kind, &pcrs, &to, &why)) return Usage("seal-api-key: " + why);
  for (const auto& w : PcrCoverageWarnings(pcrs)) LogWarning("seal-api-key: " + w);
  if (!SealLockPcrValue(kind, pcrs, &to, &why)) {
    return CommandFailed(std::string("Failed to read PCR ") + std::to_string(kLockPcr) +
                         " of the " + TpmKindName(kind) + ": " + why);
  }
  std::string output = a.Get(kOutput);
  if (output.empty()) output = ctx.config.tpm_blob;
  Secret key;
  if (!ReadStdin("API key", &key)) return kExitFail;
  Secret api_key = Secret::FromString(Trim(key.view()));
  key.Clear();
  if (api_key.empty()) return CommandFailed("The API key on standard input is empty");
  // The key directory's blob is also what rewrap --to-crk --to-config replaces.
  KeyDirLock lock;
  if (output == ctx.config.tpm_blob && !LockKeyDirOrLog(ctx.config, &lock)) return kExitFail;
  auto tpm = MakeTpm(kind, to);
  std::string blob;
  if (tpm->Seal(api_key, pcrs, &blob, &err) < 0) {
    return CommandFailed(std::string("Failed to seal the API key to the ") + TpmKindName(kind) +
                         ": " + err);
  }
  if (WriteFileAtomic(output, blob, 0600, &err) < 0) {
    return CommandFailed("Failed to save the sealed API key: " + err);
  }
  LogInfo(std::string("Sealed the API key to the ") + TpmKindName(kind) + " (PCR " + PcrList(pcrs) +
          ") into '" + output + "'; set api_key = TPM in [KP] of '" + ctx.config.path + "'");
  return kExitOk;
}

int CmdConfig(Context& ctx) {
  std::string out;
  if (ctx.args.Get(kPrint)) {
    Config c = std::move(ctx.config);
    if (auto d = ctx.args.Get(kKeyDir); !d.empty()) c.key_dir = d;
    if (auto f = ctx.args.Get(kCaFile); !f.empty()) c.ca_file = f;
    if (auto b = ctx.args.Get(kTpmBlob); !b.empty()) c.tpm_blob = b;
    Secret text = Secret::FromString(FormatConfig(c, ctx.args.Get(kWithApiKey)));
    return WriteOut(text.view()) ? kExitOk : kExitFail;
  }
  for (const std::string& name : ctx.args.Get(kGet)) out += *ConfigValue(ctx.config, name) + "\n";
  return WriteOut(out) ? kExitOk : kExitFail;
}

std::string CheckConfig(const Args& a) {
  bool get = !a.Get(kGet).empty();
  if (get == a.Get(kPrint)) return "give --get NAME (repeatable) or --print";
  if (get) {
    for (const std::string& name : a.Get(kGet)) {
      if (name == "api_key")
        return "api_key is a secret and is not printed; ask for api_key_source";
      if (!std::count_if(std::begin(kConfigValueNames), std::end(kConfigValueNames),
                         [&](const char* n) { return name == n; })) {
        std::string known;
        for (const char* n : kConfigValueNames) known += std::string(known.empty() ? "" : ", ") + n;
        return "no setting '" + Printable(name, 64) + "'; one of " + known;
      }
    }
  }
  if (a.Get(kPrint)) return "";
  for (const Text* o : {&kKeyDir, &kCaFile, &kTpmBlob}) {
    if (!a.Get(*o).empty()) return std::string(o->name) + " goes with --print";
  }
  return a.Get(kWithApiKey) ? "--with-api-key goes with --print" : "";
}

const Verb kVerbs[] = {
    {.name = "list", .synopsis = "list", .needs = Needs::kKms, .run = CmdList},
    {.name = "create",
     .synopsis = "create --crk|--std --name NAME [--gen]   (key material on stdin without --gen)",
     .needs = Needs::kKms,
     .run = CmdCreate,
     .options = {&kName, &kCrk, &kStd, &kGen},
     .check = CheckCreate},
    {.name = "get",
     .synopsis = "get --uuid UUID",
     .needs = Needs::kKms,
     .run = CmdGet,
     .options = {&kUuid},
     .check = CheckUuid},
    {.name = "delete",
     .synopsis = "delete --uuid UUID",
     .needs = Needs::kKms,
     .run = CmdDelete,
     .options = {&kUuid},
     .check = CheckUuid},
    {.name = "wrap",
     .synopsis = "wrap [--uuid CRK] [--gen]   (plaintext on stdin without --gen)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdWrap,
     .options = {&kUuid, &kGen}},
    {.name = "unwrap",
     .synopsis = "unwrap [--uuid CRK]   (ciphertext on stdin, plaintext on stdout)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdUnwrap,
     .options = {&kUuid}},
    {.name = "process",
     .synopsis = "process [--uuid CRK]   (unwrap all stored keys into the keyring)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdProcess,
     .options = {&kUuid}},
    {.name = "wipe",
     .synopsis = "wipe [--uuid CRK]   (revoke those keys, except lingering ones)",
     .needs = Needs::kConfig,
     .run = CmdWipe,
     .options = {&kUuid}},
    {.name = "report",
     .synopsis = "report [--json] [--crypttab FILE] [--initramfs IMAGE]... [--device DEVICE]...   "
                 "(will the next boot unlock?)",
     .needs = Needs::kNothing,
     .run = CmdReport,
     .options = {&kCrypttab, &kInitramfs, &kDevices, &kJson}},
    {.name = "rewrap",
     .synopsis = "rewrap [--uuid CRK] [--to-crk UUID [--to-config FILE]] [--crypttab FILE] "
                 "[--device DEVICE]...   (the wrapped keys and hpcs tokens, to the newest key "
                 "version, or to another root key)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdRewrap,
     .options = {&kUuid, &kToCrk, &kToConfig, &kCrypttab, &kDevices},
     .check = CheckRewrap,
     .writes_key_dir = true},
    {.name = "seal-api-key",
     .synopsis =
         "seal-api-key [--tpm1|--tpm2] [--pcr N[=SHA256]]... [--output FILE]   (API key on stdin)",
     .needs = Needs::kConfig,
     .run = CmdSealApiKey,
     .options = {&kPcr, &kOutput, &kTpm1, &kTpm2},
     .check = CheckSealApiKey},
    {.name = "config",
     .synopsis = "config --get NAME... | --print [--key-dir D] [--ca-file F] [--tpm-blob B] "
                 "[--with-api-key]   (the configuration as read)",
     .needs = Needs::kConfig,
     .run = CmdConfig,
     .options = {&kGet, &kKeyDir, &kCaFile, &kTpmBlob, &kPrint, &kWithApiKey},
     .check = CheckConfig},
    {.name = "luks",
     .synopsis = "luks --device DEVICE [--json]   (the key slots and tokens of a LUKS2 volume)",
     .needs = Needs::kNothing,
     .run = LuksCommand,
     .options = {&kLuksDevice, &kLuksJson},
     .check = CheckLuks},
    {.name = "token make",
     .synopsis = "token make --luks-uuid UUID --keyslot N [--uuid CRK] [--name DESC]   "
                 "(passphrase on stdin, the hpcs token's JSON on stdout)",
     .needs = Needs::kKmsAndRootKey,
     .run = TokenMakeCommand,
     .options = {&kTokenLuksUuid, &kTokenKeyslot, &kUuid, &kTokenName},
     .check = CheckTokenMake},
    {.name = "token open",
     .synopsis = "token open --device DEVICE [--token-id N]   (the passphrase of its hpcs token "
                 "on stdout, not a terminal)",
     .needs = Needs::kKms,
     .run = TokenOpenCommand,
     .options = {&kTokenDevice, &kTokenId},
     .check = CheckTokenOpen},
    {.name = "tpm-blob-kind",
     .synopsis = "tpm-blob-kind [--blob FILE]   (tpm1, tpm2 or unknown; default [HFL] tpm_blob)",
     .needs = Needs::kConfig,
     .run = BlobKindCommand,
     .options = {&kBlobKindBlob}},
    {.name = "key-files",
     .synopsis = "key-files   (the wrapped-key files, NUL-terminated, each read as hpcs-unlock "
                 "reads it)",
     .needs = Needs::kConfig,
     .run = KeyFilesCommand},
};

}  // namespace

std::span<const Verb> Verbs() { return kVerbs; }

int Usage(const std::string& msg) {
  fprintf(stderr, "hpcs-for-luks: %s\nTry 'hpcs-for-luks --help'.\n", msg.c_str());
  return kExitUsage;
}

int CommandFailed(const std::string& msg) {
  LogError(msg);
  return kExitFail;
}

}  // namespace hpcs
