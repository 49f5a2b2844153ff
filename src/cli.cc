#include "cli.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "fileio.h"
#include "json.h"
#include "keyring.h"
#include "kms.h"
#include "log.h"
#include "report_command.h"
#include "rewrap_command.h"
#include "rotation.h"
#include "strutil.h"
#include "unlock.h"
#include "version.h"
#ifdef HPCS_HAVE_TPM
#include "tpm.h"
#endif

namespace hpcs {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;
constexpr size_t kMaxStdin = 64 * 1024;
constexpr size_t kGenBytes = 32;

// Parsed command line: flags and valued options of one verb, plus globals.
struct Args {
  std::string config = kDefaultConfigPath;
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  long timeout_s = 120;
  bool debug = false;

  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Value(const std::string& o) const {
    auto it = values.find(o);
    return it == values.end() || it->second.empty() ? "" : it->second.back();
  }
};

struct Verb {
  const char* name;
  const char* synopsis;
  std::vector<std::string> value_options;  // "--uuid" ...
  std::vector<std::string> flag_options;   // "--gen" ...
  int (*run)(const Args&);
};

int Usage(const std::string& msg) {
  fprintf(stderr, "hpcs-for-luks: %s\nTry 'hpcs-for-luks --help'.\n", msg.c_str());
  return kExitUsage;
}

int Fail(const std::string& msg) {
  LogError(msg);
  return kExitFail;
}

// Loads the config; reports problems itself. Returns false on failure.
bool Load(const Args& a, Config* c) {
  std::string err;
  if (LoadConfig(a.config, c, &err) < 0) {
    LogError("Failed to load configuration: " + err);
    return false;
  }
  if (c->api_key_exposed) {
    LogWarning("'" + a.config + "' holds the API key and is readable by group or others; " +
               "run: chmod 600 '" + a.config + "'");
  }
  return true;
}

bool Connect(const Args& a, const Config& c, Kms* kms) {
  KmsOptions o;
  o.deadline = Clock::now() + std::chrono::seconds(a.timeout_s);
  o.verbose_http = false;
  std::string err;
  if (OpenKms(c, o, kms, &err) < 0) {
    LogError(err);
    return false;
  }
  return true;
}

// --uuid, else default_crk_uuid, else an error.
bool ResolveCrk(const Args& a, const Config& c, std::string* crk) {
  *crk = a.Value("--uuid");
  if (crk->empty()) *crk = c.default_crk_uuid;
  if (crk->empty()) {
    LogError("No root key given: pass --uuid UUID or set default_crk_uuid in [KP] of '" + c.path +
             "'");
    return false;
  }
  return true;
}

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

bool Random(size_t n, Secret* out) {
  Secret s(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(s.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      LogError(std::string("getrandom failed: ") + strerror(errno));
      return false;
    }
    got += static_cast<size_t>(r);
  }
  *out = std::move(s);
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

int CmdList(const Args& a) {
  Config c;
  Kms kms;
  if (!Load(a, &c) || !Connect(a, c, &kms)) return kExitFail;
  std::vector<KeyInfo> keys;
  std::string err;
  if (kms.client->List(&keys, &err) < 0) return Fail("Failed to list keys: " + err);
  std::string out;
  for (const auto& k : keys) out += k.id + "\t" + k.name + "\n";
  return WriteOut(out) ? kExitOk : kExitFail;
}

int CmdCreate(const Args& a) {
  bool crk = a.Has("--crk"), std_key = a.Has("--std");
  if (crk == std_key) return Usage("create: give exactly one of --crk or --std");
  std::string name = a.Value("--name");
  if (name.size() < 2 || name.size() > 90)
    return Usage("create: --name NAME (2 to 90 characters) is required");
  Config c;
  if (!Load(a, &c)) return kExitFail;
  Secret material;
  bool gen = a.Has("--gen");
  if (!gen && !ReadStdin("key material", &material)) return kExitFail;
  Kms kms;
  if (!Connect(a, c, &kms)) return kExitFail;
  std::string id, err;
  if (kms.client->Create(name, crk, gen ? nullptr : &material, &id, &err) < 0) {
    return Fail("Failed to create key '" + name + "': " + err);
  }
  LogInfo(std::string("Created ") + (crk ? "root" : "standard") + " key '" + name + "'");
  return WriteOut(id + "\n") ? kExitOk : kExitFail;
}

int CmdGet(const Args& a) {
  std::string id = a.Value("--uuid");
  if (id.empty()) return Usage("get: --uuid UUID is required");
  Config c;
  Kms kms;
  if (!Load(a, &c) || !Connect(a, c, &kms)) return kExitFail;
  std::string json, err;
  if (kms.client->Get(id, &json, &err) < 0) return Fail("Failed to get key '" + id + "': " + err);
  return WriteOut(json + "\n") ? kExitOk : kExitFail;
}

int CmdDelete(const Args& a) {
  std::string id = a.Value("--uuid");
  if (id.empty()) return Usage("delete: --uuid UUID is required");
  Config c;
  Kms kms;
  if (!Load(a, &c) || !Connect(a, c, &kms)) return kExitFail;
  std::string err;
  if (kms.client->Delete(id, &err) < 0) return Fail("Failed to delete key '" + id + "': " + err);
  LogInfo("Deleted key '" + id + "'");
  return kExitOk;
}

int CmdWrap(const Args& a) {
  Config c;
  std::string crk;
  if (!Load(a, &c) || !ResolveCrk(a, c, &crk)) return kExitFail;
  Secret plain;
  if (a.Has("--gen") ? !Random(kGenBytes, &plain) : !ReadStdin("plaintext", &plain)) {
    return kExitFail;
  }
  Kms kms;
  if (!Connect(a, c, &kms)) return kExitFail;
  std::string ct, err;
  if (kms.client->Wrap(crk, plain, &ct, &err) < 0) {
    return Fail("Failed to wrap with root key '" + crk + "': " + err);
  }
  // Prove the ciphertext opens to what we sent before anyone relies on it.
  Secret check;
  if (kms.client->Unwrap(crk, ct, &check, &err) < 0) {
    return Fail("Failed to verify the wrapped key with root key '" + crk + "': " + err);
  }
  if (!check.Equals(plain)) {
    return Fail("The wrapped key does not unwrap to the input (root key '" + crk +
                "'); nothing was printed");
  }
  return WriteOut(ct + "\n") ? kExitOk : kExitFail;
}

int CmdUnwrap(const Args& a) {
  Config c;
  std::string crk;
  if (!Load(a, &c) || !ResolveCrk(a, c, &crk)) return kExitFail;
  Secret in;
  if (!ReadStdin("ciphertext", &in)) return kExitFail;
  std::string_view ct = Trim(in.view());
  if (ct.empty()) return Fail("No ciphertext on standard input (only white space)");
  Kms kms;
  if (!Connect(a, c, &kms)) return kExitFail;
  Secret plain;
  std::string err;
  if (kms.client->Unwrap(crk, ct, &plain, &err) < 0) {
    return Fail("Failed to unwrap with root key '" + crk + "': " + err);
  }
  return WriteOut(plain.view()) ? kExitOk : kExitFail;
}

int CmdProcess(const Args& a) {
  Config c;
  std::string crk;
  if (!Load(a, &c) || !ResolveCrk(a, c, &crk)) return kExitFail;
  Kms kms;
  if (!Connect(a, c, &kms)) return kExitFail;
  auto keyring = MakeKernelKeyring();
  UnlockRequest req{c.key_dir, crk, {}};
  req.update_wrapped = MayUpdateWrappedKeys(c.update_wrapped_keys, "/etc/initrd-release");
  std::vector<KeyOutcome> outcomes;
  std::string err;
  if (UnlockKeys(req, *kms.client, *keyring, &outcomes, &err) < 0) {
    return Fail("Failed to process keys: " + err);
  }
  int failed = 0;
  for (const auto& o : outcomes) {
    std::string id = std::string(KeyTypeName(o.key.type)) + "/" + o.key.desc;
    if (o.result < 0) {
      ++failed;
      LogError(o.error, {{"HPCS_KEY", id}});
    } else {
      LogInfo("Added " + std::string(KeyTypeName(o.key.type)) + " key '" + o.key.desc +
              "' to the user keyring");
    }
    if (o.updated) LogInfo("Stored the newer wrapping of '" + id + "' (the root key was rotated)");
    if (!o.update_error.empty()) {
      LogWarning("Kept the older wrapping of '" + id + "': " + o.update_error);
    }
  }
  if (outcomes.empty()) LogWarning("No wrapped keys in '" + c.key_dir + "/{logon,user}'");
  if (failed) {
    return Fail(std::to_string(failed) + " of " + std::to_string(outcomes.size()) + " keys failed");
  }
  return kExitOk;
}

int CmdWipe(const Args& a) {
  Config c;
  if (!Load(a, &c)) return kExitFail;
  auto keyring = MakeKernelKeyring();
  int revoked = 0, kept = 0;
  std::vector<std::string> errors;
  int failed = WipeKeys(c.key_dir, *keyring, &revoked, &kept, &errors);
  for (const auto& e : errors) LogError(e);
  LogInfo("Revoked " + std::to_string(revoked) + " keys, kept " + std::to_string(kept) +
          " lingering");
  return failed ? kExitFail : kExitOk;
}

int CmdReport(const Args& a) {
  Config c;
  if (!Load(a, &c)) return kExitUsage;
  ReportCommandOptions o;
  o.json = a.Has("--json");
  o.crypttab = a.Value("--crypttab");
  if (auto it = a.values.find("--initramfs"); it != a.values.end()) o.initramfs = it->second;
  o.deadline = Clock::now() + std::chrono::seconds(a.timeout_s);
  return ReportCommand(c, o);
}

int CmdRewrap(const Args& a) {
  if (!a.Value("--to-config").empty() && a.Value("--to-crk").empty()) {
    return Usage("rewrap: --to-config needs --to-crk");
  }
  Config c;
  std::string crk;
  if (!Load(a, &c) || !ResolveCrk(a, c, &crk)) return kExitFail;
  if (a.Value("--to-crk") == crk) return Usage("rewrap: --to-crk names the root key in use");
  Kms kms;
  if (!Connect(a, c, &kms)) return kExitFail;
  RewrapCommandOptions o;
  o.to_crk = a.Value("--to-crk");
  o.to_config = a.Value("--to-config");
  o.deadline = Clock::now() + std::chrono::seconds(a.timeout_s);
  return RewrapCommand(c, crk, *kms.client, o);
}

int CmdSealApiKey(const Args& a) {
#ifdef HPCS_HAVE_TPM
  if (a.Has("--tpm1") && a.Has("--tpm2")) return Usage("seal-api-key: --tpm1 or --tpm2, not both");
  Config c;
  if (!Load(a, &c)) return kExitFail;
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(c.tpm2_tcti);
  TpmKind kind = a.Has("--tpm1")   ? TpmKind::kTpm1
                 : a.Has("--tpm2") ? TpmKind::kTpm2
                                   : DetectTpmKind(to);
  std::vector<unsigned> pcrs;
  auto it = a.values.find("--pcr");
  if (it != a.values.end()) {
    for (const auto& v : it->second) {
      unsigned pcr = 0;
      std::optional<std::array<uint8_t, 32>> value;
      std::string perr;
      if (ParsePcrArgument(v, &pcr, &value, &perr) < 0) return Usage("seal-api-key: " + perr);
      if (value && kind == TpmKind::kTpm1) {
        return Usage("seal-api-key: --pcr N=VALUE is for a TPM 2.0 only");
      }
      if (value) to.seal_pcr_values[pcr] = *value;
      pcrs.push_back(pcr);
    }
  } else {
    pcrs = DefaultPcrs(kind);
  }
  for (const auto& w : PcrCoverageWarnings(pcrs)) LogWarning("seal-api-key: " + w);
  std::string output = a.Value("--output");
  if (output.empty()) output = c.tpm_blob;
  Secret key;
  if (!ReadStdin("API key", &key)) return kExitFail;
  std::string_view trimmed = Trim(key.view());
  Secret api_key = Secret::FromString(trimmed);
  key.Clear();
  if (api_key.empty()) return Fail("The API key on standard input is empty");
  auto tpm = MakeTpm(kind, to);
  std::string blob, err;
  if (tpm->Seal(api_key, pcrs, &blob, &err) < 0) {
    return Fail(std::string("Failed to seal the API key to the ") + TpmKindName(kind) + ": " + err);
  }
  if (WriteFileAtomic(output, blob, 0600, &err) < 0)
    return Fail("Failed to save the sealed API key: " + err);
  LogInfo(std::string("Sealed the API key to the ") + TpmKindName(kind) + " (PCR " + PcrList(pcrs) +
          ") into '" + output + "'; set api_key = TPM in [KP] of '" + c.path + "'");
  return kExitOk;
#else
  (void)a;
  return Fail("seal-api-key: this build has no TPM support (built with HPCS_TPM=OFF)");
#endif
}

const Verb kVerbs[] = {
    {"list", "list", {}, {}, CmdList},
    {"create",
     "create --crk|--std --name NAME [--gen]   (key material on stdin without --gen)",
     {"--name"},
     {"--crk", "--std", "--gen"},
     CmdCreate},
    {"get", "get --uuid UUID", {"--uuid"}, {}, CmdGet},
    {"delete", "delete --uuid UUID", {"--uuid"}, {}, CmdDelete},
    {"wrap",
     "wrap [--uuid CRK] [--gen]   (plaintext on stdin without --gen)",
     {"--uuid"},
     {"--gen"},
     CmdWrap},
    {"unwrap",
     "unwrap [--uuid CRK]   (ciphertext on stdin, plaintext on stdout)",
     {"--uuid"},
     {},
     CmdUnwrap},
    {"process",
     "process [--uuid CRK]   (unwrap all stored keys into the keyring)",
     {"--uuid"},
     {},
     CmdProcess},
    {"wipe",
     "wipe [--uuid CRK]   (revoke those keys, except lingering ones)",
     {"--uuid"},
     {},
     CmdWipe},
    {"report",
     "report [--json] [--crypttab FILE] [--initramfs IMAGE]...   (will the next boot unlock?)",
     {"--crypttab", "--initramfs"},
     {"--json"},
     CmdReport},
    {"rewrap",
     "rewrap [--uuid CRK] [--to-crk UUID [--to-config FILE]]   (to the newest key version, or "
     "another root key)",
     {"--uuid", "--to-crk", "--to-config"},
     {},
     CmdRewrap},
    {"seal-api-key",
     "seal-api-key [--tpm1|--tpm2] [--pcr N[=SHA256]]... [--output FILE]   (API key on stdin)",
     {"--pcr", "--output"},
     {"--tpm1", "--tpm2"},
     CmdSealApiKey},
};

void PrintHelp() {
  std::string h =
      "Usage: hpcs-for-luks [--config FILE] [--timeout SECONDS] [--debug] COMMAND [OPTIONS]\n"
      "\n"
      "Keys for dm-crypt and LUKS, wrapped by a root key in IBM Key Protect or HPCS.\n"
      "\n"
      "Commands:\n";
  for (const auto& v : kVerbs) h += "  " + std::string(v.synopsis) + "\n";
  h += "\n"
       "Options:\n"
       "  --config FILE      configuration (default /etc/hpcs-for-luks.ini)\n"
       "  --timeout SECONDS  give up on the KMS after this long (default 120)\n"
       "  --debug            more messages\n"
       "  --version          print the version\n"
       "  -h, --help         this help\n";
  fputs(h.c_str(), stdout);
}

}  // namespace

int CliMain(int argc, char** argv) {
  DisableCoreDumps();
  LogSetup({LogLevel::kInfo, false, "hpcs-for-luks"});
  Args a;
  const Verb* verb = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string val;
    bool has_inline = false;
    if (StartsWith(arg, "--")) {
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        val = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto take_value = [&](std::string* out) -> bool {
      if (has_inline) {
        *out = val;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "-h" || arg == "--help") {
      PrintHelp();
      return kExitOk;
    }
    if (arg == "--version") {
      printf("hpcs-for-luks %s\n", kHpcsVersion);
      return kExitOk;
    }
    if (arg == "--config") {
      if (!take_value(&a.config) || a.config.empty()) return Usage("--config needs a file name");
      continue;
    }
    if (arg == "--timeout") {
      std::string t;
      unsigned long long n = 0;
      if (!take_value(&t) || !ParseUint(t, &n) || n == 0 || n > 86400) {
        return Usage("--timeout needs a number of seconds (1 to 86400)");
      }
      a.timeout_s = static_cast<long>(n);
      continue;
    }
    if (arg == "--debug") {
      a.debug = true;
      continue;
    }
    if (!verb) {
      if (StartsWith(arg, "-")) return Usage("unknown option '" + arg + "'");
      for (const auto& v : kVerbs) {
        if (arg == v.name) verb = &v;
      }
      if (!verb) return Usage("unknown command '" + arg + "'");
      continue;
    }
    bool known = false;
    for (const auto& o : verb->value_options) {
      if (arg == o) {
        std::string v;
        if (!take_value(&v)) return Usage(std::string(verb->name) + ": " + arg + " needs a value");
        a.values[arg].push_back(v);
        known = true;
      }
    }
    for (const auto& f : verb->flag_options) {
      if (arg == f && !has_inline) {
        a.flags.insert(arg);
        known = true;
      }
    }
    if (!known) {
      return Usage(std::string(verb->name) + ": unexpected argument '" + arg +
                   "'; usage: " + verb->synopsis);
    }
  }
  if (!verb) return Usage("no command given");
  if (a.debug) LogSetup({LogLevel::kDebug, false, "hpcs-for-luks"});
  std::string err;
  if (HttpGlobalInit(&err) < 0) return Fail(err);
  JsonInit();
  return verb->run(a);
}

}  // namespace hpcs
