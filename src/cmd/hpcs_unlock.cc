#include "cmd/hpcs_unlock.h"

#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/sd_notify.h"
#include "base/strutil.h"
#include "base/version.h"
#include "cmd/boot_tpm_lock.h"
#include "cmd/command.h"
#include "cmd/prompt_race.h"
#include "cmd/token_helper.h"
#include "core/ask_password.h"
#include "core/cmdline.h"
#include "core/config.h"
#include "core/crypttab.h"
#include "core/hpcs_token.h"
#include "core/keyring.h"
#include "core/kms.h"
#include "core/rotation.h"
#include "core/token_handoff.h"
#include "core/token_jobs.h"
#include "core/token_open.h"
#include "core/token_volumes.h"
#include "core/tpm_lock.h"
#include "core/unlock.h"
#include "kp/cert_time.h"
#include "tpm/tpm.h"
#include "tpm/tpm_probe.h"

namespace hpcs {
namespace {

constexpr long kDefaultDeadlineS = 120;
// How long the passphrase prompt waits for the KMS at most (README.md, "The
// passphrase prompt is not held back"): a healthy unlock took 1.5 to 2.1 s in
// the TCG test VM and well under 1 s on hardware; 5 s leaves room for a slow
// TPM or network and is still no wait for a person at the console.
constexpr long kDefaultGraceS = 5;

void PrintHelp() {
  fputs(
      "Usage: hpcs-unlock [OPTIONS]\n"
      "\n"
      "Unwraps every key stored under the key directory with IBM Key Protect or\n"
      "HPCS and adds it to root's user keyring, for unattended unlock at boot.\n"
      "\n"
      "  --config FILE       configuration (default /etc/hpcs-for-luks.ini)\n"
      "  --deadline SECONDS  keep trying the KMS this long in all (default 120)\n"
      "  --grace SECONDS     hold the passphrase prompt back this long at most, while\n"
      "                      the KMS answers (0 to 60, default 5); after it, the\n"
      "                      unlock goes on behind the prompt and answers it\n"
      "  --max-deadline SECONDS\n"
      "                      never run longer, whatever rd.hpcs.timeout says (for\n"
      "                      units: less than their RuntimeMaxSec)\n"
      "  --keys DESC[,DESC]  only these keys\n"
      "  --skip-loaded       leave keys that are already in the keyring alone\n"
      "  --max-parallel N    at most N requests at once (default: all at once)\n"
      "  --no-jitter         retries without random spread (benchmarks only: a fleet\n"
      "                      then retries in lockstep)\n"
      "  --no-preconnect     no KMS handshake while the IAM token is on its way\n"
      "                      (benchmarks only)\n"
      "  --cmdline FILE      kernel command line to read (default /proc/cmdline)\n"
      "  --ask-password-dir DIR\n"
      "                      where passphrase requests appear (default\n"
      "                      /run/systemd/ask-password)\n"
      "  --revoke-late-keys  revoke, at the end, the keys unwrapped after the prompt\n"
      "                      was let go (for the real root, whose wipe service may\n"
      "                      have run by then)\n"
      "  --crypttab FILE     the volumes this boot opens, for their hpcs tokens\n"
      "                      (default /etc/crypttab; and rd.luks.uuid=)\n"
      "  --lock-tpm          only lock the TPM for the rest of this boot (api_key =\n"
      "                      TPM: extend PCR 15), as every run does when it ends;\n"
      "                      for the emergency shell's unit\n"
      "  --token-open --luks-uuid UUID\n"
      "                      for the hpcs LUKS2 token's plugin: the token's JSON on\n"
      "                      stdin, its passphrase on stdout (not a terminal), within\n"
      "                      [HFL] token_timeout (rd.hpcs.token_timeout=); exit 0, 75\n"
      "                      not now, 65 bad token, 77 refused\n"
      "  --token-validate    check the token's JSON on stdin (exit 0 or 65)\n"
      "  --token-dump        the token's JSON on stdin, described on stdout\n"
      "  --debug             debug messages\n"
      "  --version           print the version\n"
      "  -h, --help          this help\n"
      "\n"
      "Kernel command line: rd.hpcs=0, rd.hpcs.debug, rd.debug, rd.hpcs.timeout=,\n"
      "rd.hpcs.grace=, "
      "rd.hpcs.key_timeout=, rd.hpcs.token_timeout=, rd.hpcs.endpoint=, rd.hpcs.iam=, "
      "rd.hpcs.crk=,\n"
      "rd.hpcs.proxy=, rd.hpcs.keys=, rd.hpcs.resolve=HOST:ADDRESS. They override\n"
      "the configuration; the endpoint and IAM URLs only as https://HOST[:PORT] with\n"
      "the configured host or one of the service (IAM's, Key Protect's, HPCS's: see\n"
      "hpcs-unlock(8)), any host with [HFL] allow_boot_endpoints = yes.\n"
      "\n"
      "Exit status: 0 all keys loaded, 1 some keys failed, 2 usage or configuration\n"
      "error, 3 the KMS could not be reached before the deadline.\n",
      stdout);
}

int UsageError(const std::string& msg) {
  LogError(msg + " (try --help)");
  return kUnlockConfigError;
}

// Keeps secrets out of swap and core files for the rest of the run.
void ProtectMemory() {
  if (LockAllMemory() < 0) {
    LogDebug("mlockall failed; secrets are still locked one buffer at a time");
  }
  DisableCoreDumps();
}

// libtspi keeps a per-user store in ~/.trousers, found through the password
// database: in a static binary that lookup needs glibc's NSS modules, which an
// initramfs may lack. A file under /run needs no lookup.
void PrepareTrousersUserStore() {
  if (getenv("TSS_USER_PS_FILE")) return;
  mkdir("/run/hpcs-for-luks", 0700);
  setenv("TSS_USER_PS_FILE", "/run/hpcs-for-luks/tss-user.data", 1);
}

struct Options {
  std::string config_path = kDefaultConfigPath;
  std::string cmdline_path = "/proc/cmdline";
  std::optional<long> deadline_s;
  std::optional<long> max_deadline_s;  // the unit's RuntimeMaxSec, less a margin
  std::vector<std::string> keys;
  bool debug = false;
  bool skip_loaded = false;
  size_t max_parallel = 0;
  bool jitter = true;
  bool preconnect = true;
  bool lock_only = false;
  std::optional<long> grace_s;
  std::string ask_dir = kAskPasswordDir;
  bool revoke_late_keys = false;
  std::string crypttab_path = kDefaultCrypttab;
  TokenHelperOptions token;  // --token-*: the plugin's helper (token_helper.h)
};

// How long the run may take: rd.hpcs.timeout (set at boot by a person)
// beats --deadline (set by the unit), which beats the default; but nothing
// goes past --max-deadline, or systemd would kill the unit mid-run.
long RunSeconds(const Options& o, const BootOptions& boot) {
  long s = boot.timeout_s.value_or(o.deadline_s.value_or(kDefaultDeadlineS));
  if (o.max_deadline_s && s > *o.max_deadline_s) {
    if (boot.timeout_s && *boot.timeout_s == s) {
      LogWarning("kernel command line: rd.hpcs.timeout=" + std::to_string(s) +
                 " is longer than this service may run (--max-deadline " +
                 std::to_string(*o.max_deadline_s) + "); giving up after " +
                 std::to_string(*o.max_deadline_s) + " s");
    }
    s = *o.max_deadline_s;
  }
  return s;
}

// nullopt when the run should go on; otherwise the exit code.
std::optional<int> ParseOptions(int argc, char** argv, Options* o) {
  static const struct option kOptions[] = {{"config", required_argument, nullptr, 'c'},
                                           {"deadline", required_argument, nullptr, 'd'},
                                           {"max-deadline", required_argument, nullptr, 'M'},
                                           {"keys", required_argument, nullptr, 'k'},
                                           {"cmdline", required_argument, nullptr, 'l'},
                                           {"debug", no_argument, nullptr, 'D'},
                                           {"version", no_argument, nullptr, 'V'},
                                           {"skip-loaded", no_argument, nullptr, 'S'},
                                           {"max-parallel", required_argument, nullptr, 'P'},
                                           {"no-jitter", no_argument, nullptr, 'J'},
                                           {"no-preconnect", no_argument, nullptr, 'N'},
                                           {"lock-tpm", no_argument, nullptr, 'L'},
                                           {"grace", required_argument, nullptr, 'G'},
                                           {"ask-password-dir", required_argument, nullptr, 'A'},
                                           {"revoke-late-keys", no_argument, nullptr, 'R'},
                                           {"crypttab", required_argument, nullptr, 'C'},
                                           {"token-open", no_argument, nullptr, 'O'},
                                           {"token-validate", no_argument, nullptr, 'T'},
                                           {"token-dump", no_argument, nullptr, 'U'},
                                           {"luks-uuid", required_argument, nullptr, 'u'},
                                           {"help", no_argument, nullptr, 'h'},
                                           {nullptr, 0, nullptr, 0}};
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, "h", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        o->config_path = optarg;
        break;
      case 'l':
        o->cmdline_path = optarg;
        break;
      case 'k':
        o->keys = Split(optarg, ',');
        break;
      case 'D':
        o->debug = true;
        break;
      case 'S':
        o->skip_loaded = true;
        break;
      case 'J':
        o->jitter = false;
        break;
      case 'N':
        o->preconnect = false;
        break;
      case 'L':
        o->lock_only = true;
        break;
      case 'A':
        o->ask_dir = optarg;
        break;
      case 'R':
        o->revoke_late_keys = true;
        break;
      case 'C':
        o->crypttab_path = optarg;
        break;
      case 'O':
        o->token.mode = TokenMode::kOpen;
        break;
      case 'T':
        o->token.mode = TokenMode::kValidate;
        break;
      case 'U':
        o->token.mode = TokenMode::kDump;
        break;
      case 'u':
        o->token.luks_uuid = optarg;
        break;
      case 'G': {
        unsigned long long n = 0;
        if (!ParseUint(optarg, &n) || n > static_cast<unsigned long long>(kMaxGraceS)) {
          return UsageError("--grace needs a number of seconds from 0 to " +
                            std::to_string(kMaxGraceS));
        }
        o->grace_s = static_cast<long>(n);
        break;
      }
      case 'P': {
        unsigned long long n = 0;
        if (!ParseUint(optarg, &n) || n > 10000) {
          return UsageError("--max-parallel needs a number from 0 (no limit) to 10000");
        }
        o->max_parallel = static_cast<size_t>(n);
        break;
      }
      case 'd':
        if (long n = 0; ParseSeconds(optarg, &n)) {
          o->deadline_s = n;
          break;
        }
        return UsageError(std::string("--deadline needs ") + kSecondsRange);
      case 'M':
        if (long n = 0; ParseSeconds(optarg, &n)) {
          o->max_deadline_s = n;
          break;
        }
        return UsageError(std::string("--max-deadline needs ") + kSecondsRange);
      case 'V':
        printf("hpcs-unlock %s\n", kHpcsVersion);
        return kUnlockOk;
      case 'h':
        PrintHelp();
        return kUnlockOk;
      default:
        return UsageError(std::string("unknown or incomplete option '") + argv[optind - 1] + "'");
    }
  }
  if (optind < argc) return UsageError(std::string("unexpected argument '") + argv[optind] + "'");
  if ((o->token.mode == TokenMode::kOpen) != !o->token.luks_uuid.empty()) {
    return UsageError("--token-open and --luks-uuid go together");
  }
  o->token.config_path = o->config_path;
  o->token.cmdline_path = o->cmdline_path;
  return std::nullopt;
}

// The rd.hpcs.* options; without /proc (a container, a chroot) there are none.
bool ReadBootOptions(const Options& o, BootOptions* boot) {
  std::string cmdline, err;
  if (ReadRegularFile(o.cmdline_path, kMaxSmallFileSize, &cmdline, nullptr, &err) < 0) {
    if (o.cmdline_path != "/proc/cmdline") {
      UsageError("cannot read the kernel command line: " + err);
      return false;
    }
    LogDebug("no kernel command line: " + err);
  }
  *boot = ParseBootOptions(cmdline);
  return true;
}

// The config with the kernel command line applied; it must name a root key.
bool LoadBootConfig(const Options& o, const BootOptions& boot, Config* config) {
  if (!LoadConfigAndWarn(o.config_path, config)) return false;
  std::vector<std::string> refused, changed;
  ApplyBootOptions(boot, config, &refused, &changed);
  for (const auto& r : refused) LogWarning("kernel command line: " + r);
  for (const auto& r : changed) LogWarning("kernel command line: " + r);
  if (config->default_crk_uuid.empty()) {
    LogError("No root key: set default_crk_uuid in [KP] of '" + o.config_path +
             "' or rd.hpcs.crk= on the kernel command line");
    return false;
  }
  return true;
}

// An initramfs on a machine without a working RTC starts with the clock at
// systemd's build date: every current certificate is then "not yet valid".
// True when the clock is behind and the TLS library can make an allowance.
bool AllowForAClockBehind() {
  std::time_t now = std::time(nullptr);
  if (!ClockBehindBuild(now)) return false;
  std::string clock = "the clock (" + FormatUtc(now) + ") is before this hpcs-unlock was built (" +
                      FormatUtc(BuildTime()) + ")";
  if (!CurlForgiveFutureStart()) {
    LogWarning(clock + ": certificates may be refused as not yet valid; set the clock");
    return false;
  }
  LogWarning(clock +
             ", so it is wrong: a certificate whose only fault is a start date in the "
             "future is accepted (chain, host name and expiry are still checked)");
  return true;
}

// A client that keeps trying until the deadline, as befits a boot.
bool OpenBootKms(const Config& config, Deadline deadline, const Options& o, const Secret* token,
                 Kms* kms) {
  std::string err;
  if (HttpGlobalInit(&err) < 0) {
    LogError(err);
    return false;
  }
  JsonInit();
  if (config.api_key_from_tpm) PrepareTrousersUserStore();
  KmsOptions ko;
  ko.deadline = deadline;
  ko.retry.max_retries = -1;
  ko.retry.cap = std::chrono::seconds(5);  // a server that comes back is found quickly
  ko.retry.jitter = o.jitter;
  ko.tpm_device_wait = std::chrono::seconds(10);  // the TPM driver may still be loading
  ko.wait_for_tcsd = true;                        // tcsd may still be starting
  ko.forgive_future_start = AllowForAClockBehind();
  int r = token ? OpenKmsWithToken(config, ko, *token, Clock::now() + kMaxHandoffTtl,
                                   "api_key = TPM: the TPM is locked for this boot, and the "
                                   "IAM token the initramfs handed on was refused or has "
                                   "expired",
                                   kms, &err)
                : OpenKms(config, ko, kms, &err);
  if (r < 0) {
    LogError(err + (token ? "" : LockHint(config)));
    return false;
  }
  kms->client->set_max_parallel(o.max_parallel);
  kms->client->set_preconnect(o.preconnect);
  return true;
}

// The KMS of a run, opened when it is first needed (by the keys, or by the
// first hpcs token the agent asks for), and only on the unwrapping thread.
class BootKms {
 public:
  BootKms(const Options& o, const Config& config, Deadline deadline)
      : o_(o), config_(config), deadline_(deadline) {}
  // nullptr when it cannot be opened (logged once).
  KpClient* Get() {
    if (!tried_) {
      tried_ = true;
      Secret token;
      bool have_token = TakeTokenAfterTheLock(config_, &token);
      opened_ = OpenBootKms(config_, deadline_, o_, have_token ? &token : nullptr, &kms_);
    }
    return opened_ ? kms_.client.get() : nullptr;
  }
  // Hands the IAM token on to the real root once, after a first success.
  void HandOn() {
    if (!opened_ || handed_on_) return;
    handed_on_ = true;
    HandOnToken(config_, kms_);
  }

 private:
  const Options& o_;
  const Config& config_;
  Deadline deadline_;
  Kms kms_;
  bool tried_ = false, opened_ = false, handed_on_ = false;
};

// The unwrapping itself, on the race's thread: the API key (or the token
// handed on), the KMS, every key into `keyring`, the token handed on. With
// no key to unwrap, the KMS is not opened (the API key not unsealed) here.
int UnwrapAll(BootKms& boot_kms, const UnlockRequest& req, Keyring& keyring) {
  if (req.only.empty() && req.listed && req.listed->result >= 0 && req.listed->keys.empty()) {
    LogDebug("no wrapped keys under '" + req.key_dir + "/{logon,user}'");
    return kUnlockOk;
  }
  KpClient* kp = boot_kms.Get();
  if (!kp) return kUnlockConfigError;
  UnlockStatus status = UnlockAndReport(req, *kp, keyring, LogLevel::kDebug);
  boot_kms.HandOn();
  switch (status) {
    case UnlockStatus::kAllLoaded:
      return kUnlockOk;
    case UnlockStatus::kSomeFailed:
      return kUnlockSomeFailed;
    case UnlockStatus::kUnreachable:
      return kUnlockUnreachable;
    case UnlockStatus::kCannotReadKeys:
      break;
  }
  return kUnlockConfigError;
}

// The hpcs tokens the agent asks for, one after the other, on the race's
// thread after the keys.
void ServeTokenJobs(BootKms& boot_kms, const Config& config, Deadline deadline, TokenJobs& jobs,
                    PasswordAgent& agent) {
  TokenJob job;
  while (jobs.Next(deadline, &job)) {
    KpClient* kp = boot_kms.Get();
    if (!kp) {
      agent.Refuse(job.name, "no connection to the KMS (see above)");
      continue;
    }
    std::string why = "no hpcs token";
    bool done = false;
    for (const std::string& json : job.tokens) {
      HpcsToken token;
      Secret pass;
      if (ParseHpcsToken(json, &token, &why) < 0 ||
          OpenHpcsToken(*kp, config, token, job.uuid, &pass, nullptr, &why) < 0) {
        continue;
      }
      LogDebug("unwrapped the hpcs token of '" + job.device + "' (LUKS UUID " + job.uuid + ")");
      agent.OfferTokenAnswer(job.name, std::move(pass));
      boot_kms.HandOn();
      done = true;
      break;
    }
    if (!done) {
      LogWarning("cannot unwrap the hpcs token of '" + job.device + "' (LUKS UUID " + job.uuid +
                 "): " + why);
      agent.Refuse(job.name, why);
    }
  }
}

// The volumes this boot opens (their hpcs tokens are answered): the
// crypttab's and the kernel command line's.
std::vector<std::string> BootVolumes(const Options& o) {
  std::string crypttab, cmdline, err;
  if (ReadRegularFile(o.crypttab_path, kMaxSmallFileSize, &crypttab, nullptr, &err) < 0) {
    LogDebug("no crypttab: " + err);
  }
  if (ReadRegularFile(o.cmdline_path, kMaxSmallFileSize, &cmdline, nullptr, &err) < 0) {
    LogDebug("no kernel command line: " + err);
  }
  return BootVolumeDevices(crypttab, cmdline);
}

// Everything after the config is loaded; the TPM is locked after it.
int RunUnlock(const Options& o, const BootOptions& boot, const Config& config, Deadline deadline) {
  auto keyring = MakeKernelKeyring();
  UnlockRequest req{config.key_dir, config.default_crk_uuid, o.keys, o.skip_loaded};
  req.update_wrapped = MayUpdateWrappedKeys(config.update_wrapped_keys, kInitrdRelease);
  // A boot never waits for another writer of the key directory: with its
  // lock held, the newer wrappings are not stored this time (a warning).
  req.lock_wait = std::chrono::milliseconds(0);
  req.key_timeout_s = config.key_timeout_s;
  // In the real root after the initramfs: the API key is unsealed only when
  // there is something to unwrap. The unwraps use the same listing of the keys.
  RaceOptions race;
  race.grace = std::chrono::seconds(boot.grace_s.value_or(o.grace_s.value_or(kDefaultGraceS)));
  race.deadline = deadline;
  race.ask_dir = o.ask_dir;
  race.revoke_late_keys = o.revoke_late_keys;
  race.key_dir = config.key_dir;
  race.token_instance = config.service_instance_id;
  race.boot_volumes = BootVolumes(o);
  const bool tokens_pending = !PendingTokenVolumes(race.boot_volumes, race.token_instance).empty();
  if (int n = 0; req.skip_loaded && AllRequestedKeysLoaded(&req, *keyring, &n) && !tokens_pending) {
    LogInfo("all " + std::to_string(n) + " keys are in the keyring already: nothing to unwrap");
    DropHandedToken(config);
    return kUnlockOk;
  }
  if (!req.listed) req.listed = ListRequestedKeys(req);
  // What this run is to load: with --skip-loaded, not what is in @u already.
  std::set<std::string> user_keys;
  int total = 0;
  for (const StoredKey& k : req.listed->keys) {
    if (req.skip_loaded && keyring->Has(k.type, k.desc)) continue;
    ++total;
    if (k.type == KeyType::kUser) user_keys.insert(k.desc);
  }
  if (total == 0 && req.skip_loaded) {
    // What is left are the hpcs tokens: the keys are not unwrapped again.
    req.only = {};
    req.listed->keys.clear();
  }
  BootKms boot_kms(o, config, deadline);
  RaceResult r = RaceThePrompt(
      race, user_keys, total, *keyring, [&](Keyring& k) { return UnwrapAll(boot_kms, req, k); },
      [&](TokenJobs& jobs, PasswordAgent& agent) {
        ServeTokenJobs(boot_kms, config, deadline, jobs, agent);
      });
  if (r.stopped) {
    // The unwrapping thread may be in the middle of a request: the process
    // ends here, after the TPM lock, without waiting for it.
    LockTheTpm(&config);
    fflush(stdout);
    fflush(stderr);
    _exit(kUnlockOk);
  }
  return r.rc;
}

}  // namespace

namespace {

int UnlockMainUntilReady(int argc, char** argv, bool* token_helper) {
  LogSetup({LogLevel::kInfo, true, "hpcs-unlock"});
  Options o;
  BootOptions boot;
  if (auto exit = ParseOptions(argc, argv, &o)) return *exit;
  if (o.token.mode != TokenMode::kNone) {
    // Run by a libcryptsetup plugin, not by systemd: no READY=1, no race.
    *token_helper = true;
    // With <N> prefixes: the plugin passes each line on to crypt_log at its level.
    LogSetup({o.debug ? LogLevel::kDebug : LogLevel::kInfo, true, "hpcs-unlock"});
    ProtectMemory();
    return TokenHelperMain(o.token);
  }
  if (!ReadBootOptions(o, &boot)) return kUnlockConfigError;
  if (boot.debug || o.debug) LogSetup({LogLevel::kDebug, true, "hpcs-unlock"});
  for (const auto& w : boot.warnings) LogWarning("kernel command line: " + w);
  if (o.lock_only) {
    PrepareTrousersUserStore();
    Config config;
    bool loaded = LoadConfigAndWarn(o.config_path, &config);
    LockTheTpm(loaded ? &config : nullptr);
    return kUnlockOk;
  }
  if (boot.disabled) {
    LogInfo("rd.hpcs=0 on the kernel command line: nothing to do");
    return kUnlockOk;
  }
  ProtectMemory();
  long total_s = RunSeconds(o, boot);
  Deadline deadline = Clock::now() + std::chrono::seconds(total_s);
  Config config;
  if (!LoadBootConfig(o, boot, &config)) {
    LockTheTpm(config.path.empty() ? nullptr : &config);
    return kUnlockConfigError;
  }
  if (o.keys.empty()) o.keys = boot.keys;
  int rc = RunUnlock(o, boot, config, deadline);
  LockTheTpm(&config);
  return rc;
}

}  // namespace

// Under Type=notify every way out says READY=1 first (the race says it as
// soon as it may): a unit that ends without it is a protocol failure.
int UnlockMain(int argc, char** argv) {
  bool token_helper = false;
  int rc = UnlockMainUntilReady(argc, argv, &token_helper);
  if (token_helper) return rc;
  std::string err;
  if (NotifyServiceManager("READY=1", &err) < 0) LogDebug(err);
  return rc;
}

}  // namespace hpcs
