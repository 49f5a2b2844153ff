#include "cmd/cli.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "base/json.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/version.h"
#include "cmd/cli_verbs.h"
#include "cmd/command.h"
#include "core/config.h"
#include "core/kms.h"

namespace hpcs {
namespace {

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
  if (verb.needs == Needs::kNothing) return verb.run(ctx);
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
  for (const auto& v : Verbs()) h += "  " + std::string(v.synopsis) + "\n";
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
      for (const auto& v : Verbs()) {
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
