#include "cli.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "command.h"
#include "config.h"
#include "fileio.h"
#include "json.h"
#include "keyring.h"
#include "kms.h"
#include "log.h"
#include "random.h"
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

// What a verb needs before it runs; CliMain provides it (ninja's Tool table).
enum class Needs {
  kConfig,         // the configuration, loaded and checked for exposure
  kKms,            // and a KMS client (settings checked, API key obtained)
  kKmsAndRootKey,  // and the root key: --uuid, else default_crk_uuid
};

// Everything a verb gets.
struct Context {
  const Args& args;
  Config config;
  std::string crk;
  Kms kms;
};

struct Verb {
  const char* name;
  const char* synopsis;
  Needs needs;
  int (*run)(Context&);
  std::vector<std::string> value_options = {};  // "--uuid" ...
  std::vector<std::string> flag_options = {};   // "--gen" ...
  // Problems with the arguments alone, found before anything is loaded.
  std::string (*check)(const Args&) = nullptr;
};

int Usage(const std::string& msg) {
  fprintf(stderr, "hpcs-for-luks: %s\nTry 'hpcs-for-luks --help'.\n", msg.c_str());
  return kExitUsage;
}

// Logs the failure of a command; returns its exit code.
int CommandFailed(const std::string& msg) {
  LogError(msg);
  return kExitFail;
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

bool WriteOut(std::string_view data) {
  std::string err;
  if (WriteAllFd(STDOUT_FILENO, data, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return false;
  }
  return true;
}

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
  if (a.Has("--crk") == a.Has("--std")) return "give exactly one of --crk or --std";
  if (size_t n = a.Value("--name").size(); n < 2 || n > 90) {
    return "--name NAME (2 to 90 characters) is required";
  }
  return "";
}

int CmdCreate(Context& ctx) {
  bool crk = ctx.args.Has("--crk"), gen = ctx.args.Has("--gen");
  std::string name = ctx.args.Value("--name");
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
  return a.Value("--uuid").empty() ? "--uuid UUID is required" : "";
}

int CmdGet(Context& ctx) {
  std::string id = ctx.args.Value("--uuid"), json, err;
  if (ctx.kms.client->Get(id, &json, &err) < 0) {
    return CommandFailed("Failed to get key '" + id + "': " + err);
  }
  return WriteOut(json + "\n") ? kExitOk : kExitFail;
}

int CmdDelete(Context& ctx) {
  std::string id = ctx.args.Value("--uuid"), err;
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
  if (ctx.args.Has("--gen")) {
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
  UnlockStatus s = UnlockAndReport(req, *ctx.kms.client, *keyring, LogLevel::kInfo);
  return s == UnlockStatus::kAllLoaded ? kExitOk : kExitFail;
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
  return a.Has("--tpm1") && a.Has("--tpm2") ? "--tpm1 or --tpm2, not both" : "";
}

#ifdef HPCS_HAVE_TPM
// --pcr N or N=SHA256, repeated (default: the TPM kind's); the values to seal
// against go into *to. False with the reason in *why.
bool SealPcrs(const Args& a, TpmKind kind, std::vector<unsigned>* pcrs, TpmOptions* to,
              std::string* why) {
  auto it = a.values.find("--pcr");
  if (it == a.values.end()) {
    *pcrs = DefaultPcrs(kind);
    return true;
  }
  for (const auto& v : it->second) {
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
#endif

int CmdSealApiKey(Context& ctx) {
#ifdef HPCS_HAVE_TPM
  const Args& a = ctx.args;
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(ctx.config.tpm2_tcti);
  TpmKind kind = a.Has("--tpm1")   ? TpmKind::kTpm1
                 : a.Has("--tpm2") ? TpmKind::kTpm2
                                   : DetectTpmKind(to);
  std::vector<unsigned> pcrs;
  std::string why;
  if (!SealPcrs(a, kind, &pcrs, &to, &why)) return Usage("seal-api-key: " + why);
  for (const auto& w : PcrCoverageWarnings(pcrs)) LogWarning("seal-api-key: " + w);
  std::string output = a.Value("--output");
  if (output.empty()) output = ctx.config.tpm_blob;
  Secret key;
  if (!ReadStdin("API key", &key)) return kExitFail;
  Secret api_key = Secret::FromString(Trim(key.view()));
  key.Clear();
  if (api_key.empty()) return CommandFailed("The API key on standard input is empty");
  auto tpm = MakeTpm(kind, to);
  std::string blob, err;
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
#else
  (void)ctx;
  return CommandFailed("seal-api-key: this build has no TPM support (built with HPCS_TPM=OFF)");
#endif
}

const Verb kVerbs[] = {
    {.name = "list", .synopsis = "list", .needs = Needs::kKms, .run = CmdList},
    {.name = "create",
     .synopsis = "create --crk|--std --name NAME [--gen]   (key material on stdin without --gen)",
     .needs = Needs::kKms,
     .run = CmdCreate,
     .value_options = {"--name"},
     .flag_options = {"--crk", "--std", "--gen"},
     .check = CheckCreate},
    {.name = "get",
     .synopsis = "get --uuid UUID",
     .needs = Needs::kKms,
     .run = CmdGet,
     .value_options = {"--uuid"},
     .check = CheckUuid},
    {.name = "delete",
     .synopsis = "delete --uuid UUID",
     .needs = Needs::kKms,
     .run = CmdDelete,
     .value_options = {"--uuid"},
     .check = CheckUuid},
    {.name = "wrap",
     .synopsis = "wrap [--uuid CRK] [--gen]   (plaintext on stdin without --gen)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdWrap,
     .value_options = {"--uuid"},
     .flag_options = {"--gen"}},
    {.name = "unwrap",
     .synopsis = "unwrap [--uuid CRK]   (ciphertext on stdin, plaintext on stdout)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdUnwrap,
     .value_options = {"--uuid"}},
    {.name = "process",
     .synopsis = "process [--uuid CRK]   (unwrap all stored keys into the keyring)",
     .needs = Needs::kKmsAndRootKey,
     .run = CmdProcess,
     .value_options = {"--uuid"}},
    {.name = "wipe",
     .synopsis = "wipe [--uuid CRK]   (revoke those keys, except lingering ones)",
     .needs = Needs::kConfig,
     .run = CmdWipe,
     .value_options = {"--uuid"}},
    {.name = "seal-api-key",
     .synopsis =
         "seal-api-key [--tpm1|--tpm2] [--pcr N[=SHA256]]... [--output FILE]   (API key on stdin)",
     .needs = Needs::kConfig,
     .run = CmdSealApiKey,
     .value_options = {"--pcr", "--output"},
     .flag_options = {"--tpm1", "--tpm2"},
     .check = CheckSealApiKey},
};

// ---- Providing what the verbs need ----

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

int Dispatch(const Verb& verb, const Args& a) {
  Context ctx{a, {}, {}, {}};
  if (!LoadConfigAndWarn(a.config, &ctx.config)) return kExitFail;
  if (verb.needs == Needs::kKmsAndRootKey && !ResolveCrk(a, ctx.config, &ctx.crk)) {
    return kExitFail;
  }
  if (verb.needs != Needs::kConfig) {
    KmsOptions o;
    o.deadline = Clock::now() + std::chrono::seconds(a.timeout_s);
    std::string err;
    if (OpenKms(ctx.config, o, &ctx.kms, &err) < 0) return CommandFailed(err);
  }
  return verb.run(ctx);
}

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

// ---- The command line ----

// One argument, "--name=value" split; Take() gets the value from the next
// argument when there was no '='.
struct ArgReader {
  ArgReader(int c, char** v) : argc(c), argv(v) {}
  int argc;
  char** argv;
  int i = 0;
  std::string arg, inline_value;
  bool has_inline = false;

  bool Next() {
    if (++i >= argc) return false;
    arg = argv[i];
    has_inline = false;
    if (size_t eq = arg.find('='); StartsWith(arg, "--") && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
      has_inline = true;
    }
    return true;
  }
  bool Take(std::string* out) {
    if (has_inline) {
      *out = inline_value;
      return true;
    }
    if (i + 1 >= argc) return false;
    *out = argv[++i];
    return true;
  }
};

// Options before and after the verb that every verb takes. nullopt: not one
// of them; otherwise the exit code, or -1 to go on.
std::optional<int> GlobalOption(ArgReader& r, Args* a) {
  if (r.arg == "-h" || r.arg == "--help") {
    PrintHelp();
    return kExitOk;
  }
  if (r.arg == "--version") {
    printf("hpcs-for-luks %s\n", kHpcsVersion);
    return kExitOk;
  }
  if (r.arg == "--config") {
    if (!r.Take(&a->config) || a->config.empty()) return Usage("--config needs a file name");
    return -1;
  }
  if (r.arg == "--timeout") {
    std::string t;
    if (!r.Take(&t) || !ParseSeconds(t, &a->timeout_s)) {
      return Usage(std::string("--timeout needs ") + kSecondsRange);
    }
    return -1;
  }
  if (r.arg == "--debug") {
    a->debug = true;
    return -1;
  }
  return std::nullopt;
}

// An option of the verb: false if it is not one.
bool VerbOption(ArgReader& r, const Verb& verb, Args* a, std::string* usage) {
  for (const auto& o : verb.value_options) {
    if (r.arg != o) continue;
    std::string v;
    if (!r.Take(&v)) *usage = std::string(verb.name) + ": " + r.arg + " needs a value";
    a->values[r.arg].push_back(v);
    return true;
  }
  for (const auto& f : verb.flag_options) {
    if (r.arg == f && !r.has_inline) {
      a->flags.insert(r.arg);
      return true;
    }
  }
  return false;
}

// nullopt when the verb should run; otherwise the exit code.
std::optional<int> ParseCommandLine(int argc, char** argv, Args* a, const Verb** verb) {
  ArgReader r(argc, argv);
  while (r.Next()) {
    if (auto exit = GlobalOption(r, a)) {
      if (*exit >= 0) return exit;
      continue;
    }
    if (!*verb) {
      if (StartsWith(r.arg, "-")) return Usage("unknown option '" + r.arg + "'");
      for (const auto& v : kVerbs) {
        if (r.arg == v.name) *verb = &v;
      }
      if (!*verb) return Usage("unknown command '" + r.arg + "'");
      continue;
    }
    std::string usage;
    if (!VerbOption(r, **verb, a, &usage)) {
      return Usage(std::string((*verb)->name) + ": unexpected argument '" + r.arg +
                   "'; usage: " + (*verb)->synopsis);
    }
    if (!usage.empty()) return Usage(usage);
  }
  if (!*verb) return Usage("no command given");
  if ((*verb)->check) {
    if (std::string m = (*verb)->check(*a); !m.empty()) return Usage((*verb)->name + (": " + m));
  }
  return std::nullopt;
}

}  // namespace

int CliMain(int argc, char** argv) {
  DisableCoreDumps();
  LogSetup({LogLevel::kInfo, false, "hpcs-for-luks"});
  Args a;
  const Verb* verb = nullptr;
  if (auto exit = ParseCommandLine(argc, argv, &a, &verb)) return *exit;
  if (a.debug) LogSetup({LogLevel::kDebug, false, "hpcs-for-luks"});
  std::string err;
  if (HttpGlobalInit(&err) < 0) return CommandFailed(err);
  JsonInit();
  return Dispatch(*verb, a);
}

}  // namespace hpcs
